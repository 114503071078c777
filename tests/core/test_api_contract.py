"""Every endpoint in the OpenAPI schema, as every role, with hostile input.

A sweep over the published schema: no request may produce a 500, every 4xx uses
the one error format, no endpoint but login answers anonymous callers, and
nothing is written by a refused request. New endpoints are covered as soon as
they appear in the schema.
"""

from __future__ import annotations

import re

import pytest
import yaml
from django.apps import apps
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

HOSTILE_BODIES = [
    {},
    {"participant": "x" * 10_000, "site": "<script>alert(1)</script>", "study_number": "PRE-99999"},
    {"participant": None, "answer": "maybe", "date": "2999-01-01", "given_on": "not-a-date"},
    ["not", "an", "object"],
]
PATH_VALUES = ["PRE-00001", "BLEND", "BLEND-001", "999999", "<b>x</b>", "x" * 300]
ROLES = ["nurse", "investigator", "data_manager", "statistician", "administrator"]


def _schema(client) -> dict:
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def _concrete_paths(template: str) -> list[str]:
    names = re.findall(r"{([^}]+)}", template)
    if not names:
        return [template]
    paths = []
    for value in PATH_VALUES:
        path = template
        for name in names:
            path = path.replace("{" + name + "}", value)
        paths.append(path)
    return paths


def _row_counts() -> dict[str, int]:
    counts = {}
    for model in apps.get_models():
        if (
            model._meta.app_label in {"cohort", "randomization", "crf", "endpoints"}
            and model._meta.managed
        ):
            counts[model._meta.label] = model._base_manager.count()
    return counts


def _assert_error_format(response) -> None:
    if response.status_code >= 400 and response["Content-Type"].startswith("application/json"):
        body = response.json()
        assert isinstance(body, dict) and "detail" in body and "errors" in body, (
            response.request,
            body,
        )


@pytest.mark.django_db
def test_every_endpoint_refuses_anonymous_callers(api_client_for, statistician):
    spec = _schema(api_client_for(statistician))
    anonymous = APIClient()
    for template, operations in spec["paths"].items():
        if template.startswith("/api/v1/auth/login"):
            continue
        for method, operation in operations.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            path = template
            for param in operation.get("parameters", []):
                if param.get("in") == "path":
                    value = "1" if param.get("schema", {}).get("type") == "integer" else "PRE-00001"
                    path = path.replace("{" + param["name"] + "}", value)
            try:
                resolve(path)
            except Resolver404:
                continue
            response = getattr(anonymous, method)(path, {}, format="json")
            assert response.status_code == 401, (method, path, response.status_code)
            _assert_error_format(response)


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_hostile_input_never_500_and_refusals_write_nothing(
    role, make_user, api_client_for, site_a
):
    user = make_user(
        role, None if role in {"statistician", "administrator", "data_manager"} else site_a
    )
    client = api_client_for(user)
    spec = _schema(client)
    for template, operations in spec["paths"].items():
        if template.startswith("/api/v1/auth/logout"):
            continue  # would revoke the token this sweep uses
        for path in _concrete_paths(template):
            for method in operations:
                if method == "get":
                    response = client.get(path)
                    assert response.status_code < 500, (method, path)
                    _assert_error_format(response)
                elif method in {"post", "put", "patch"}:
                    for body in HOSTILE_BODIES:
                        before = _row_counts()
                        response = getattr(client, method)(path, body, format="json")
                        assert response.status_code < 500, (method, path, body)
                        _assert_error_format(response)
                        if response.status_code >= 400:
                            assert _row_counts() == before, (
                                method,
                                path,
                                "a refused request wrote rows",
                            )
