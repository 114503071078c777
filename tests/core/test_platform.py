"""Schema, docs, deploy checks, migrations, demo data, error pages, translations."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from openapi_spec_validator import validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_openapi_schema_validates(api_client_for, nurse_a):
    response = api_client_for(nurse_a).get("/api/schema/")
    assert response.status_code == 200
    spec = yaml.safe_load(response.content)
    assert spec["openapi"].startswith("3.")
    validate(spec)
    assert "/api/v1/auth/login/" in spec["paths"]


@pytest.mark.django_db
def test_schema_and_docs_need_login(client, nurse_a):
    assert client.get("/api/schema/").status_code in (401, 403)
    assert client.get("/api/docs/").status_code in (401, 403)
    client.force_login(nurse_a)
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"cdn" not in docs.content.lower()  # Swagger UI served from our own static files


def test_check_deploy_is_clean_with_production_values():
    env = {
        **{k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"},
        "DJANGO_SETTINGS_MODULE": "blend.settings",
        "DEBUG": "0",
        "SECRET_KEY": "k" * 20 + "production-like-secret-value-0123456789-abcdef",
        "ALLOWED_HOSTS": "blend.example.org",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_settings_refuse_missing_secret_key_in_production():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    env.update({"DJANGO_SETTINGS_MODULE": "blend.settings", "DEBUG": "0"})
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.django_db
def test_migrations_are_complete():
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


@pytest.mark.django_db
def test_seed_demo_is_idempotent_and_debug_only():
    from core.models import Site, SiteMembership, User

    with override_settings(DEBUG=True):
        call_command("seed_demo", verbosity=0)
        counts = (Site.objects.count(), User.objects.count(), SiteMembership.objects.count())
        call_command("seed_demo", verbosity=0)
    assert (Site.objects.count(), User.objects.count(), SiteMembership.objects.count()) == counts
    assert counts[1] == 6
    with override_settings(DEBUG=False), pytest.raises(CommandError):
        call_command("seed_demo", verbosity=0)


@pytest.mark.django_db
def test_friendly_404_page(client, nurse_a):
    client.force_login(nurse_a)
    with override_settings(DEBUG=False):
        response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert b"404" in response.content


@pytest.mark.django_db
def test_security_headers(client, nurse_a):
    client.force_login(nurse_a)
    response = client.get("/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["Cache-Control"] == "no-store"
    assert response["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
def test_dutch_is_default_and_english_available(client):
    nl = client.get("/login/")
    assert b"Inloggen" in nl.content
    client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})
    en = client.get("/login/")
    assert b"Log in" in en.content


@pytest.mark.django_db
def test_demo_administrator_is_not_a_superuser_and_reads_no_clinical_models():
    from core.models import User

    with override_settings(DEBUG=True):
        call_command("seed_demo", verbosity=0)
    admin = User.objects.get(username="admin")
    assert admin.is_staff and not admin.is_superuser
    assert admin.has_perm("core.change_sitemembership")
    assert not admin.has_perm("core.delete_sitemembership")
    assert not admin.has_perm("cohort.view_participant")
    assert not admin.has_perm("cohort.view_identity")
