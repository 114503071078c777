"""schemathesis over the whole OpenAPI schema, in process through the WSGI app.

For the nurse, the investigator, the monitor and the statistician: every operation is
called with generated requests (valid ones, and ones the schema forbids) and every
response must be what the schema says it is: no server error, a documented status code,
the documented content type, a body matching the documented schema (for that role: the
statistician's pseudonymised objects included), valid input accepted and invalid input
refused. Half of the valid requests go to objects that exist (a registered, consenting,
randomised participant at the caller's site, and one at the other site), so 200 bodies
are checked, not only 404s. A refused write leaves no row behind.

Examples per operation are bounded (``EXAMPLES``) so the module stays well under two
minutes on two cores.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.apps import apps
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, connection
from django.utils import timezone
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from knox.models import AuthToken
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests import factories

ROLES = ["nurse", "investigator", "monitor", "statistician"]
EXAMPLES = {GenerationMode.POSITIVE: 6, GenerationMode.NEGATIVE: 3}
SKIPPED = {("POST", "/api/v1/auth/logout/")}  # would revoke the token the sweep uses


# --- valid input is accepted, or refused for a rule the schema names ---------------------------
def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        target = spec
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        schema = target
    for key in ("allOf", "oneOf", "anyOf"):
        if key in schema and "properties" not in schema:
            merged = {k: v for k, v in schema.items() if k != key}
            for part in schema[key]:
                merged = {**_resolve(spec, part), **merged}
            return merged
    return schema


def _undocumented_refusals(spec: dict, schema: dict, errors: dict, prefix: str = "") -> list:
    """Error keys of a 400 that name no rule of the request schema (``x-server-rules``)."""
    schema = _resolve(spec, schema)
    properties = schema.get("properties", {})
    undocumented = []
    for key, messages in errors.items():
        if key in properties:
            field = _resolve(spec, properties[key])
            if isinstance(messages, dict) and "properties" in field:
                undocumented += _undocumented_refusals(spec, field, messages, f"{prefix}{key}.")
            elif not field.get("x-server-rules"):
                undocumented.append((f"{prefix}{key}", messages))
        elif not schema.get("x-server-rules"):
            undocumented.append((f"{prefix}{key}", messages))
    return undocumented


def positive_data_refused_only_for_documented_rules(ctx, response, case):
    """A schema-valid request may be refused (400) only for a rule the schema names on the
    field, the query parameter or the input (``x-server-rules``: rules about stored data or today's date that
    JSON Schema cannot express); anything else the schema must describe, or the server
    accept. Other refusals (401, 403, 404, 409, 429) are documented statuses."""
    if not case.meta.generation.mode.is_positive or response.status_code != 400:
        return None
    spec = case.operation.schema.raw_schema
    content = case.operation.definition.raw.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema", {})
    errors = dict((response.json() or {}).get("errors", {}))
    undocumented = []
    for parameter in case.operation.definition.raw.get("parameters", []):
        if parameter.get("in") == "query" and parameter["name"] in errors:
            messages = errors.pop(parameter["name"])
            schema = _resolve(spec, parameter.get("schema", {}))
            if not (parameter.get("x-server-rules") or schema.get("x-server-rules")):
                undocumented.append((parameter["name"], messages))
    if errors:
        undocumented += (
            _undocumented_refusals(spec, body_schema, errors) if body_schema else [errors]
        )
    assert not undocumented, (
        f"a schema-valid request was refused for rules the schema does not name: {undocumented}"
    )
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    positive_data_refused_only_for_documented_rules,
    negative_data_rejection,
]


# --- the world the requests meet -------------------------------------------------------------
@pytest.fixture
def world(settings, make_user, site_a, site_b):
    """Two sites; at each a registered participant with all consents; the one at site A
    screened eligible, randomised and with a planned start of treatment."""
    from randomization.services import treatment_start_set

    settings.RANDOMISATION_ENVIRONMENT = "test"
    trial = factories.blend_trial()
    users = {
        "nurse": make_user("nurse", site_a, username="st_nurse"),
        "investigator": make_user("investigator", site_a, username="st_investigator"),
        "monitor": make_user("data_manager", None, username="st_monitor"),
        "statistician": make_user("statistician", None, username="st_statistician"),
    }
    factories.SequenceFactory(trial=trial)
    today = timezone.localdate()
    participants = {site.code: factories.ParticipantFactory(site=site) for site in (site_a, site_b)}
    participant = participants[site_a.code]
    factories.ScreeningFactory(trial=trial, participant=participant)
    allocation = factories.AllocationFactory(trial=trial, participant=participant)
    treatment_start_set(
        by=factories.registrar(site_a),
        allocation=allocation,
        planned=today + timedelta(days=7),
        actual=None,
    )
    consent = participant.consents.order_by("pk").first()
    return {
        "users": users,
        "path_values": {
            "study_number": [participant.study_number, participants[site_b.code].study_number],
            "code": [trial.code],
            "trial_number": [allocation.trial_number],
            "id": [consent.pk],
        },
    }


@pytest.fixture
def wsgi_keeps_test_connection():
    """The real WSGI handler, minus closing the database connection after each request
    (it holds the test's transaction), as Django's own test client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


def _row_counts() -> tuple[int, ...]:
    """Rows of every trial table (events included), in one query."""
    tables = [
        model._meta.db_table
        for model in apps.get_models()
        if model._meta.app_label in {"cohort", "randomization", "crf", "endpoints"}
        and model._meta.managed
    ]
    sql = " UNION ALL ".join(f'SELECT count(*) FROM "{t}"' for t in tables)  # noqa: S608
    with connection.cursor() as cur:
        cur.execute(sql)
        return tuple(row[0] for row in cur.fetchall())


def _schema(token: str):
    return schemathesis.openapi.from_wsgi(
        "/api/schema/?format=json", WSGIHandler(), headers={"Authorization": f"Token {token}"}
    )


def _run_operation(operation, *, mode, token, path_values, failures) -> None:
    headers = {"Authorization": f"Token {token}"}
    names = [
        p["name"] for p in operation.definition.raw.get("parameters", []) if p.get("in") == "path"
    ]
    known = {name: path_values[name] for name in names if name in path_values}

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode), pick=st.data())
    def run(case, pick):
        if mode is GenerationMode.POSITIVE and known and pick.draw(st.booleans()):
            case.path_parameters = {
                **(case.path_parameters or {}),
                **{name: pick.draw(st.sampled_from(values)) for name, values in known.items()},
            }
        if (
            mode is GenerationMode.POSITIVE
            and isinstance(case.body, dict)
            and "participant" in case.body
            and pick.draw(st.booleans())
        ):
            case.body["participant"] = pick.draw(st.sampled_from(path_values["study_number"]))
        before = _row_counts() if case.method != "GET" else None
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)
        if before is not None and response.status_code >= 400:
            assert _row_counts() == before, "a refused request wrote rows"

    try:
        run()
    except Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # nothing in this operation can be made invalid (no parameters, no body)
    except (AssertionError, BaseExceptionGroup) as exc:  # reported together, below
        failures.append(f"{mode.name} {operation.label}: {exc}")


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
def test_schemathesis_every_operation_conforms(role, world, wsgi_keeps_test_connection):
    """Every response of every operation is what the schema documents, for this role."""
    user = world["users"][role]
    _instance, token = AuthToken.objects.create(user)
    schema = _schema(token)
    failures: list[str] = []
    count = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in SKIPPED:
            continue
        count += 1
        for mode in EXAMPLES:
            _run_operation(
                operation,
                mode=mode,
                token=token,
                path_values=world["path_values"],
                failures=failures,
            )
    assert count >= 20, count
    assert not failures, "\n\n".join(failures)
