"""Login, lockout, tokens, the API error format, session timeout."""

import subprocess
import sys

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
    assert not AuthToken.objects.filter(pk=instance.pk).exists()  # deleted, as knox does


@pytest.mark.django_db
def test_a_request_reads_only_its_own_token_and_login_clears_expired_ones(
    client, nurse_a, django_assert_num_queries
):
    """An API request reads the token it carries (one query, with its user), not all the
    user's tokens; the user's expired tokens are deleted at their next login."""
    from datetime import timedelta

    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    expired, _expired_token = AuthToken.objects.create(nurse_a, expiry=timedelta(seconds=1))
    AuthToken.objects.filter(pk=expired.pk).update(expiry=timezone.now() - timedelta(seconds=5))
    _live, token = AuthToken.objects.create(nurse_a)
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code == 200
    token_reads = [q["sql"] for q in queries if 'FROM "knox_authtoken"' in q["sql"]]
    assert len(token_reads) == 1 and "token_key" in token_reads[0], token_reads
    assert AuthToken.objects.filter(pk=expired.pk).exists()  # not this request's business
    response = client.post(
        "/api/v1/auth/login/",
        {"username": "nurse_a", "password": "correct-horse-battery-9"},
        content_type="application/json",
    )
    assert response.status_code == 200
    assert not AuthToken.objects.filter(pk=expired.pk).exists()
    assert AuthToken.objects.filter(user=nurse_a).count() == 2  # the live one and the new one


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


# --- malformed credentials, token limit, API lockout, throttles, cookies ----------------------
@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Token \xe9\xe9\xe9\xe9",
        "Token " + "\xe9" * 64,
        "Token \u20ac" + "a" * 63,  # not encodable as latin-1 at all
        "Token abc",
        "Token " + "a" * 5000,
        "Token " + "g" * 64,
        "Token " + "A" * 64,
        "Token \x00" + "a" * 63,
    ],
)
def test_malformed_token_header_is_a_401_in_error_format(client, nurse_a, header):
    """A credential knox could never have issued is refused as 401, never a 500."""
    response = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401, response.content
    assert set(response.json()) == {"detail", "errors"}


@pytest.mark.django_db
def test_malformed_token_with_a_real_token_key_is_a_401(client, nurse_a):
    _instance, token = AuthToken.objects.create(nurse_a)
    bad = token[:15] + "\xe9" * (len(token) - 15)
    response = client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {bad}")
    assert response.status_code == 401
    assert client.get("/api/v1/auth/me/", HTTP_AUTHORIZATION=f"Token {token}").status_code == 200


def _api_login(client, password="correct-horse-battery-9", username="nurse_a", **extra):
    return client.post(
        "/api/v1/auth/login/",
        {"username": username, "password": password},
        content_type="application/json",
        **extra,
    )


@pytest.mark.django_db
def test_token_limit_per_user_refuses_the_next_login(client, nurse_a):
    """TOKEN_LIMIT_PER_USER = 20 (knox: the login is refused once the limit is reached)."""
    from datetime import timedelta

    from django.utils import timezone

    limit = settings.REST_KNOX["TOKEN_LIMIT_PER_USER"]
    assert limit == 20
    for _ in range(limit):
        assert _api_login(client).status_code == 200
    assert AuthToken.objects.filter(user=nurse_a).count() == limit
    response = _api_login(client)
    assert response.status_code == 403, response.content
    assert set(response.json()) == {"detail", "errors"}
    assert AuthToken.objects.filter(user=nurse_a).count() == limit
    # an expired token no longer counts
    oldest = AuthToken.objects.filter(user=nurse_a).order_by("created").first()
    AuthToken.objects.filter(pk=oldest.pk).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _api_login(client).status_code == 200


@pytest.mark.django_db
def test_api_lockout_answers_403_json_in_the_error_format(client, nurse_a):
    for _attempt in range(settings.AXES_FAILURE_LIMIT):
        response = _api_login(client, password="wrong")
    assert response.status_code == 403, response.content  # the attempt that locks
    assert response["Content-Type"].startswith("application/json")
    response = _api_login(client)
    assert response.status_code == 403, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"detail", "errors"} and body["detail"]
    assert not AuthToken.objects.exists()
    # the web login keeps its lockout page
    web = client.post(
        reverse("login"), {"username": "nurse_a", "password": "correct-horse-battery-9"}
    )
    assert web.status_code == 429 and b"<html" in web.content.lower()


def _throttled_logins(client, n: int, **extra) -> list[int]:
    import uuid

    codes = []
    for _ in range(n):
        fake = f"198.51.100.{uuid.uuid4().int % 250 + 1}"
        response = client.post(
            "/api/v1/auth/login/",
            {},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=fake,
            **extra,
        )
        codes.append(response.status_code)
    return codes


def _login_rate(rate: str):
    from django.test import override_settings

    return override_settings(
        REST_FRAMEWORK={
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {
                **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
                "login": rate,
            },
        }
    )


@pytest.mark.django_db
def test_login_throttle_ignores_a_made_up_x_forwarded_for(client, clean_redis):
    """Without trusted proxies a random X-Forwarded-For does not start a fresh count."""
    with _login_rate("5/min"):
        codes = _throttled_logins(client, 8)
    assert codes[:5] == [400] * 5 and codes[5:] == [429] * 3, codes


@pytest.mark.django_db
def test_login_throttle_behind_a_proxy_keys_on_the_address_the_proxy_saw(client, clean_redis):
    """With one trusted proxy the client is the last X-Forwarded-For entry (what the proxy
    appended), the same address the lockout and the audit trail record."""
    from axes.helpers import get_client_ip_address
    from django.test import RequestFactory, override_settings

    from core.middleware import client_ip

    with override_settings(TRUSTED_PROXY_COUNT=1), _login_rate("3/min"):
        codes = [
            client.post(
                "/api/v1/auth/login/",
                {},
                content_type="application/json",
                HTTP_X_FORWARDED_FOR=f"10.9.9.{i}, 203.0.113.7",
            ).status_code
            for i in range(5)
        ]
        assert codes == [400, 400, 400, 429, 429], codes
        other = client.post(
            "/api/v1/auth/login/",
            {},
            content_type="application/json",
            HTTP_X_FORWARDED_FOR="203.0.113.8",
        )
        assert other.status_code == 400  # another client has its own count
        request = RequestFactory().get(
            "/", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.7", REMOTE_ADDR="10.0.0.1"
        )
        assert client_ip(request) == get_client_ip_address(request) == "203.0.113.7"


_OTHER_PROCESS = """
import json, sys
import django
django.setup()
from django.test.utils import setup_test_environment, override_settings
from django.conf import settings
from django.test import Client
setup_test_environment()
rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "login": "15/min"}
with override_settings(REST_FRAMEWORK={**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}):
    client = Client()
    codes = [client.post("/api/v1/auth/login/", {}, content_type="application/json").status_code
             for _ in range(int(sys.argv[1]))]
print(json.dumps(codes))
"""


@pytest.mark.django_db
def test_login_throttle_counts_across_processes(client, clean_redis):
    """Two processes (as two gunicorn workers) share one count in Redis."""
    import json

    from tests.conftest import ROOT, _worker_env

    with _login_rate("15/min"):
        first = [
            client.post("/api/v1/auth/login/", {}, content_type="application/json").status_code
            for _ in range(8)
        ]
        other = subprocess.run(  # noqa: S603
            [sys.executable, "-c", _OTHER_PROCESS, "7"],
            env=_worker_env(settings.REDIS_URL),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr[-2000:]
        second = json.loads(other.stdout.strip().splitlines()[-1])
        third = [
            client.post("/api/v1/auth/login/", {}, content_type="application/json").status_code
            for _ in range(2)
        ]
    assert first == [400] * 8 and second == [400] * 7, (first, second)
    assert third == [429, 429], third  # 8 + 7 = 15 used up by two processes


@pytest.mark.django_db
def test_login_throttle_fails_open_to_per_process_counting_when_redis_is_down(
    client, private_redis, caplog
):
    """Redis down: no error, counting goes on in this process; Redis is tried again later."""
    import time

    from django.test import override_settings

    from core import throttling

    caches = {
        **settings.CACHES,
        "throttle": {**settings.CACHES["throttle"], "LOCATION": private_redis.url},
    }
    throttling._state["down_until"] = 0.0
    with override_settings(CACHES=caches), _login_rate("4/min"):
        assert _throttled_logins(client, 2) == [400, 400]  # counted in Redis
        private_redis.stop()
        started = time.monotonic()
        codes = _throttled_logins(client, 6)
        elapsed = time.monotonic() - started
        assert codes == [400, 400, 400, 400, 429, 429], codes  # a fresh count per process
        assert elapsed < 3, elapsed  # no waiting on the dead store for every request
        assert throttling._state["down_until"] > time.time()
        assert "counting per process" in caplog.text
    throttling._state["down_until"] = 0.0


@pytest.mark.django_db
def test_csrf_cookie_is_not_readable_by_scripts(client):
    """htmx sends the token from the page (hx-headers), so the cookie can be HttpOnly."""
    response = client.get(reverse("login"))
    cookie = response.cookies.get(settings.CSRF_COOKIE_NAME)
    assert cookie is not None and cookie["httponly"] is True
