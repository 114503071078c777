"""Login, lockout, tokens, the API error format, session timeout."""

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.urls import reverse
from knox.models import AuthToken


@pytest.mark.django_db
def test_web_login_and_logout(client, nurse_a):
    response = client.post(
        reverse("login"), {"username": "nurse_a", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


@pytest.mark.django_db
def test_lockout_after_configured_failures(client, nurse_a):
    """After AXES_FAILURE_LIMIT wrong passwords, even the right password is refused."""
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit):
        client.post(reverse("login"), {"username": "nurse_a", "password": "wrong"})
    response = client.post(
        reverse("login"), {"username": "nurse_a", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 429
    assert AccessAttempt.objects.filter(username="nurse_a").get().failures_since_start >= limit
    assert "_auth_user_id" not in client.session


@pytest.mark.django_db
def test_lockout_is_keyed_on_username_and_ip(client, nurse_a, make_user, site_a):
    make_user("nurse", site_a, username="other")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(reverse("login"), {"username": "nurse_a", "password": "wrong"})
    # Another username from the same address is not locked.
    response = client.post(
        reverse("login"), {"username": "other", "password": "correct-horse-battery-9"}
    )
    assert response.status_code == 302


@pytest.mark.django_db
def test_api_token_login_and_use(client, nurse_a):
    response = client.post(
        "/api/v1/auth/login/",
        {"username": "nurse_a", "password": "correct-horse-battery-9"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert set(body) == {"token", "expiry", "username"}
    token_row = AuthToken.objects.get(user=nurse_a)
    assert body["token"] not in (token_row.digest, token_row.token_key)  # only a digest is stored
    me = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert me.status_code == 200
    assert me.json()["roles"] == ["nurse"]
    out = client.post("/api/v1/auth/logout/", HTTP_AUTHORIZATION=f"Token {body['token']}")
    assert out.status_code == 204
    assert (
        client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {body['token']}").status_code
        == 401
    )


@pytest.mark.django_db
def test_api_wrong_password_uses_error_format(client, nurse_a):
    response = client.post(
        "/api/v1/auth/login/",
        {"username": "nurse_a", "password": "nope"},
        content_type="application/json",
    )
    assert response.status_code in (400, 401), response.content
    body = response.json()
    assert set(body) == {"detail", "errors"}
    assert body["detail"]
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_api_missing_fields_give_field_errors(client):
    response = client.post("/api/v1/auth/login/", {}, content_type="application/json")
    assert response.status_code == 400, response.content
    body = response.json()
    assert set(body["errors"]) == {"username", "password"}


@pytest.mark.django_db
def test_api_failures_count_towards_lockout(client, nurse_a):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post(
            "/api/v1/auth/login/",
            {"username": "nurse_a", "password": "x"},
            content_type="application/json",
        )
    response = client.post(
        "/api/v1/auth/login/",
        {"username": "nurse_a", "password": "correct-horse-battery-9"},
        content_type="application/json",
    )
    assert response.status_code in (403, 429)
    assert not AuthToken.objects.exists()


@pytest.mark.django_db
def test_expired_token_is_refused(client, nurse_a):
    from datetime import timedelta

    from django.utils import timezone

    instance, token = AuthToken.objects.create(nurse_a, expiry=timedelta(seconds=1))
    AuthToken.objects.filter(pk=instance.pk).update(expiry=timezone.now() - timedelta(seconds=5))
    assert client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 401


def test_session_idles_out_after_30_minutes():
    assert settings.SESSION_COOKIE_AGE == 30 * 60
    assert settings.SESSION_SAVE_EVERY_REQUEST is True


def test_argon2_is_the_production_hasher():
    import blend.settings as prod

    assert prod.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"


@pytest.mark.django_db
def test_unauthenticated_api_gets_401_in_error_format(client):
    response = client.get("/api/v1/auth/me/")
    assert response.status_code == 401
    assert set(response.json()) == {"detail", "errors"}
