"""A broken definition stops the start-up (system check crf.E001), one test per broken case;
the register of definition versions (crf.FormDefinition) is synced after migrate,
idempotently and audited, refuses a file changed under a registered version (crf.E002),
and is read-only in the admin."""

from __future__ import annotations

import json

import pytest
from django.core.checks import run_checks

from crf import checks, definition_store, instruments
from crf.models import FormDefinition


def crf_errors(**kwargs) -> list[str]:
    """What the system check registry (as run at start-up) reports for the definitions."""
    found = run_checks(tags=[checks.DEFINITIONS], **kwargs)
    return [f"{e.id} {e.msg}" for e in found if e.id and e.id.startswith("crf.")]


def t(text: str) -> dict[str, str]:
    return {"nl": text, "en": text}


def item(code: str, kind: str, **extra) -> dict:
    return {"code": code, "kind": kind, "text": t(code)} | extra


def clinical(*items: dict, **top) -> dict:
    return {
        "code": "broken",
        "version": "1",
        "kind": "clinical",
        "occurs": "log",
        "title": t("Broken"),
        "items": list(items),
    } | top


# (case, file content, what the message must say)
BROKEN_FILES = [
    ("unknown item kind", clinical(item("a", "slider")), "unknown kind 'slider'"),
    (
        "condition on a missing item",
        clinical(item("a", "date", show_if={"item": "nowhere", "equals": True})),
        "the condition names 'nowhere', which is not an earlier item",
    ),
    ("duplicate code", clinical(item("a", "date"), item("a", "yes_no")), "duplicate code"),
    (
        "unknown computed function",
        clinical(item("s", "computed", function="bmi", inputs=[])),
        "unknown computed function 'bmi'",
    ),
    (
        "computed input missing",
        clinical(
            item("a", "date"),
            item("s", "computed", function="length_of_stay", inputs=["a", "gone"]),
        ),
        "input 'gone' is not an earlier item",
    ),
    (
        "unknown scale",
        clinical(item("a", "choice", choices="no_scale")),
        "unknown response scale 'no_scale'",
    ),
    (
        "unknown code list",
        clinical(item("a", "code_list", code_list="meddra_99")),
        "unknown code list 'meddra_99'",
    ),
    ("repeat without items", clinical(item("r", "repeat")), "needs a non-empty list of 'items'"),
    ("unknown check", clinical(item("a", "date"), checks=["nope"]), "unknown check 'nope'"),
    ("unknown definition kind", clinical(item("a", "date"), kind="crf"), "unknown kind 'crf'"),
    ("not JSON", "{not json", "Expecting property name"),
    ("code not the file name", clinical(item("a", "date"), code="other"), "declares code 'other'"),
    (
        "questionnaire in the clinical folder",
        clinical(item("a", "choice", choices=[[1, t("x")]]), kind="questionnaire", occurs="")
        | {"instructions": t("i"), "licence_note": "n"},
        "must be of kind 'clinical'",
    ),
]


@pytest.fixture
def with_file(monkeypatch):
    """Add one file to the shipped definitions as the check sees them."""

    def _add(content) -> None:
        raw = (content if isinstance(content, str) else json.dumps(content)).encode()
        shipped = list(checks.definition_sources())
        monkeypatch.setattr(
            checks,
            "definition_sources",
            lambda: iter([*shipped, ("crf/definitions/broken.json", "clinical", raw)]),
        )

    return _add


def test_the_shipped_definitions_pass_the_check(db):
    assert checks.definition_errors(checks.definition_sources()) == []
    assert crf_errors() == []
    everything = run_checks()  # the definitions check is part of the full system check
    assert not [e for e in everything if e.id and e.id.startswith("crf.")]


@pytest.mark.parametrize(
    ("content", "message"),
    [case[1:] for case in BROKEN_FILES],
    ids=[case[0] for case in BROKEN_FILES],
)
def test_a_broken_definition_fails_the_system_check(db, with_file, content, message):
    with_file(content)
    errors = checks.definition_errors(checks.definition_sources())
    assert [e.id for e in errors] == ["crf.E001"]
    assert errors[0].msg.startswith("crf/definitions/broken.json"), errors[0].msg
    assert message in errors[0].msg, errors[0].msg
    assert crf_errors() == [f"crf.E001 {errors[0].msg}"]


def test_a_broken_definition_names_its_item(with_file):
    with_file(clinical(item("ok", "date"), item("bad", "slider")))
    (error,) = checks.definition_errors(checks.definition_sources())
    assert error.msg == "crf/definitions/broken.json, item 'bad': unknown kind 'slider'"


# --------------------------------------------------------------------------- the register


def test_definitions_are_registered_after_migrate_and_sync_is_idempotent(db):
    """post_migrate filled the register (the test database was migrated); a second sync
    adds nothing and writes no audit event."""
    shipped = instruments.all_codes() + instruments.all_codes(kind="clinical")
    rows = {row.code: row for row in FormDefinition.objects.all()}
    assert set(rows) == set(shipped)
    surgery = rows["surgery"]
    assert (surgery.version, surgery.kind, surgery.occurs) == ("2026.2", "clinical", "per_event")
    assert surgery.title == {"nl": "Operatie", "en": "Surgery"}
    assert surgery.sha256 == instruments.definition_sha256("surgery")
    assert surgery.content["items"][0]["code"] == "started_at"
    assert rows["c15pal"].kind == "questionnaire" and rows["c15pal"].occurs == ""
    events = FormDefinition.pgh_event_model.objects.count()
    assert definition_store.form_definitions_sync() == []
    assert FormDefinition.objects.count() == len(shipped)
    assert FormDefinition.pgh_event_model.objects.count() == events


def test_sync_registers_a_new_version_audited_with_the_system_actor(db):
    FormDefinition.objects.filter(code="admission").update(version="2025.9")
    assert definition_store.form_definitions_sync() == ["admission 2026.2"]
    assert list(
        FormDefinition.objects.filter(code="admission")
        .order_by("version")
        .values_list("version", flat=True)
    ) == ["2025.9", "2026.2"]
    new = FormDefinition.objects.get(code="admission", version="2026.2")
    event = FormDefinition.pgh_event_model.objects.filter(pgh_obj=new, pgh_label="insert").get()
    assert event.pgh_context.metadata["actor"] == "form_definitions_sync"


@pytest.fixture
def surgery_edited(monkeypatch):
    """surgery.json edited without a new version."""
    original = instruments.definition_source

    def edited(code: str) -> tuple[str, bytes]:
        name, raw = original(code)
        if code == "surgery":
            data = json.loads(raw)
            data["items"][0]["help"] = t("edited")
            raw = json.dumps(data).encode()
        return name, raw

    monkeypatch.setattr(instruments, "definition_source", edited)


def test_a_file_changed_under_a_registered_version_is_refused(db, surgery_edited):
    FormDefinition.objects.filter(code="end_of_study").update(version="old")  # one to add
    before = FormDefinition.objects.count()
    events = FormDefinition.pgh_event_model.objects.count()
    with pytest.raises(definition_store.DefinitionChanged, match="crf/definitions/surgery.json"):
        definition_store.form_definitions_sync()
    assert FormDefinition.objects.count() == before  # nothing written, not even the new one
    assert FormDefinition.pgh_event_model.objects.count() == events
    assert crf_errors() == []  # without the database only the files are checked
    (error,) = crf_errors(databases=["default"])
    assert error.startswith("crf.E002 crf/definitions/surgery.json changed, but version 2026.2")


def test_the_database_check_passes_when_files_match(db):
    assert crf_errors(databases=["default"]) == []


# --------------------------------------------------------------------------- admin


@pytest.fixture
def staff_admin(administrator):
    administrator.is_staff = True
    administrator.is_superuser = True
    administrator.save()
    return administrator


def test_admin_lists_definitions_read_only(client, staff_admin):
    client.force_login(staff_admin)
    page = client.get("/admin/crf/formdefinition/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "baseline_clinical" in text and "2026.2" in text and "c15pal" in text
    row = FormDefinition.objects.get(code="surgery")
    detail = client.get(f"/admin/crf/formdefinition/{row.pk}/change/")
    assert detail.status_code == 200
    assert "started_at" in detail.content.decode()
    assert 'name="_save"' not in detail.content.decode()
    assert client.get("/admin/crf/formdefinition/add/").status_code == 403
    assert (
        client.post(f"/admin/crf/formdefinition/{row.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    changed = client.post(
        f"/admin/crf/formdefinition/{row.pk}/change/", {"version": "hacked", "code": "x"}
    )
    assert changed.status_code == 403
    row.refresh_from_db()
    assert row.version == "2026.2"
    assert FormDefinition.objects.filter(code="surgery").count() == 1


def test_form_definition_rows_cannot_be_deleted(db):
    from django.db import IntegrityError, InternalError, transaction

    row = FormDefinition.objects.get(code="surgery")
    with pytest.raises((IntegrityError, InternalError)), transaction.atomic():
        row.delete()
    assert FormDefinition.objects.filter(code="surgery").exists()


def test_a_misnamed_file_in_the_folder_is_reported(monkeypatch, db):
    raw = json.dumps(clinical(item("a", "date"), code="surgery_two")).encode()
    shipped = list(checks.definition_sources())
    monkeypatch.setattr(
        checks,
        "definition_sources",
        lambda: iter([*shipped, ("crf/definitions/Surgery Two.json", "clinical", raw)]),
    )
    assert crf_errors() == [
        "crf.E001 crf/definitions/Surgery Two.json: declares code 'surgery_two'"
    ]
