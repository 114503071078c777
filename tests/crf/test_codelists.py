"""CTCAE v5.0 as a versioned code list: the shipped subset, lookups (database first), the
loading service (roles, once per version, all or nothing, audited) and ``manage.py
load_ctcae`` on small files in NCI's layout (tests/crf/data/), good and bad."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connections
from django.utils import translation
from openpyxl import load_workbook

from core.refusals import NotAllowed
from crf import codelists
from crf.codelists import (
    InvalidCodeList,
    UnknownCodeList,
    VersionAlreadyLoaded,
    code_list_load,
    codes,
    current_version,
    term,
)
from crf.models import CodeList, CodeListTerm
from tests.conftest import events

DATA = Path(__file__).parent / "data"
CSV = DATA / "ctcae_v5_small.csv"
XLSX = DATA / "ctcae_v5_small.xlsx"
SMALL_CODES = {"10048038", "10028813", "10016256", "10002272", "10018065"}
L = "ctcae_v5"

# The terms the brief for spinal SBRT and surgery names, by MedDRA code.
REQUIRED_TERMS = {
    "10053692": "Wound complication",
    "10048038": "Wound infection",
    "10048031": "Wound dehiscence",
    "10003988": "Back pain",
    "10033371": "Pain",
    "10061103": "Dermatitis radiation",
    "10028527": "Myelitis",
    "10041569": "Spinal fracture",
    "10013950": "Dysphagia",
    "10015756": "Esophagitis",
    "10028813": "Nausea",
    "10047700": "Vomiting",
    "10016256": "Fatigue",
    "10034620": "Peripheral sensory neuropathy",
    "10043565": "Thromboembolic event",
}


@pytest.fixture(autouse=True)
def _in_english():
    """The refusals are matched in English here (the site's language is Dutch: see
    test_a_refusal_reads_in_dutch)."""
    with translation.override("en"):
        yield


@pytest.fixture(autouse=True)
def _fresh_code_lists():
    """The per-process cache starts and ends empty (a test's rolled-back load must not
    leak into the next test)."""
    codelists.clear_cache()
    yield
    codelists.clear_cache()


def _rows(*codes_: str) -> list[dict]:
    return [
        {
            "code": c,
            "term": f"Term {c}",
            "soc": "General disorders and administration site conditions",
            "grades": {1: "Mild", 2: "Moderate", 3: "Severe", 4: None, 5: None},
        }
        for c in codes_
    ]


def _nothing_written() -> None:
    assert CodeList.objects.count() == 0
    assert CodeListTerm.objects.count() == 0
    assert events(CodeList).count() == 0
    assert events(CodeListTerm).count() == 0


# --- the shipped list ----------------------------------------------------------------------
@pytest.mark.django_db
def test_the_shipped_list_applies_while_none_was_loaded():
    assert current_version(L) == "5.0"
    shipped = codes(L)
    assert set(REQUIRED_TERMS) <= shipped
    for code, name in REQUIRED_TERMS.items():
        t = term(L, code)
        assert t is not None and t.term == name and t.version == "5.0"
        assert t.term_nl and t.soc and t.definition
        assert t.grade(1) or t.grade(2)  # every term has a lowest grade
    other = [t for t in codelists.terms(L) if t.needs_specification]
    assert other, "an 'other, specify' term is shipped"
    assert term(L, "99999999") is None


def test_grades_that_do_not_exist_are_null_and_grade_5_is_death():
    nausea = codelists.shipped(L).terms["10028813"]
    assert nausea.available_grades == (1, 2, 3)
    assert nausea.grade(4) is None and nausea.grade(5) is None
    infection = codelists.shipped(L).terms["10048038"]
    assert infection.available_grades == (2, 3, 4, 5)
    for t in codelists.shipped(L).terms.values():
        assert t.grade(5) in (None, "Death"), t.term
    with pytest.raises(ValueError):
        nausea.grade(6)


def test_the_shipped_file_says_its_source_and_that_grade_texts_are_paraphrased():
    source = codelists.shipped_source(L)
    assert "CTCAE" in source and "version 5.0" in source and "paraphrase" in source


def test_label_follows_the_language():
    t = codelists.shipped(L).terms["10028813"]
    with translation.override("nl"):
        assert t.label == "Misselijkheid"
    with translation.override("en"):
        assert t.label == "Nausea"


@pytest.mark.django_db
def test_an_unknown_list_is_a_key_error():
    with pytest.raises(UnknownCodeList):
        codes("meddra_full")
    with pytest.raises(KeyError):
        current_version("meddra_full")


# --- the service ---------------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("role", ["administrator", "data_manager"])
def test_administrators_and_data_managers_load_a_version(
    make_user, role, django_capture_on_commit_callbacks
):
    user = make_user(role, None)
    assert codes(L) >= set(REQUIRED_TERMS)  # cached: the shipped list
    with django_capture_on_commit_callbacks(execute=True):
        loaded = code_list_load(
            by=user, code=L, version="5.0", rows=_rows("10028813", "10099999"), source="test rows"
        )
    assert loaded.is_current and loaded.loaded_by == user
    assert codes(L) == {"10028813", "10099999"}  # the cache was cleared
    assert current_version(L) == "5.0"
    # a row without a Dutch label keeps the shipped one for the same code
    assert CodeListTerm.objects.get(code="10028813").term_nl == "Misselijkheid"
    assert CodeListTerm.objects.get(code="10099999").term_nl == ""
    assert term(L, "10099999").grades == ("Mild", "Moderate", "Severe", None, None)
    stored = events(CodeList).get()
    assert stored.pgh_label == "insert"
    assert (
        "code list ctcae_v5 5.0 loaded (2 terms): test rows"
        in stored.pgh_context.metadata["reason"]
    )
    assert events(CodeListTerm).count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("role", ["nurse", "investigator", "statistician", None])
def test_other_roles_may_not_load(make_user, site_a, role):
    user = make_user(role, site_a if role in ("nurse", "investigator") else None)
    with pytest.raises(NotAllowed):
        code_list_load(by=user, code=L, version="5.0", rows=_rows("10028813"), source="x")
    _nothing_written()


@pytest.mark.django_db
def test_a_version_is_loaded_once(administrator):
    code_list_load(by=administrator, code=L, version="5.0", rows=_rows("10028813"), source="a")
    before = (CodeListTerm.objects.count(), events(CodeListTerm).count(), events(CodeList).count())
    with pytest.raises(VersionAlreadyLoaded) as refused:
        code_list_load(by=administrator, code=L, version="5.0", rows=_rows("10016256"), source="b")
    assert "already loaded" in str(refused.value) and "administrator" in str(refused.value)
    assert refused.value.field_errors["version"]
    after = (CodeListTerm.objects.count(), events(CodeListTerm).count(), events(CodeList).count())
    assert after == before
    assert not CodeListTerm.objects.filter(code="10016256").exists()


@pytest.mark.django_db
def test_a_new_version_becomes_current_and_the_old_one_stays(monitor):
    first = code_list_load(by=monitor, code=L, version="5.0", rows=_rows("10028813"), source="a")
    second = code_list_load(
        by=monitor, code=L, version="5.1", rows=_rows("10028813", "10016256"), source="b"
    )
    first.refresh_from_db()
    assert not first.is_current and second.is_current
    assert first.terms.count() == 1  # nothing deleted
    assert current_version(L) == "5.1" and codes(L) == {"10028813", "10016256"}
    update = events(CodeList).filter(pgh_obj_id=first.pk, pgh_label="update").get()
    assert update.is_current is False


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("rows", "needle"),
    [
        (_rows("10028813") + _rows("10028813"), "appears twice"),
        ([{**_rows("1")[0], "term": ""}], "term is missing"),
        ([{**_rows("1")[0], "soc": " "}], "system organ class is missing"),
        ([{**_rows("1")[0], "code": "10 02"}], "not a code"),
        ([{**_rows("1")[0], "grades": {1: "-", 2: None, 3: "", 4: "–", 5: None}}], "no grade"),  # noqa: RUF001
        ([{**_rows("1")[0], "grades": {0: "x", 1: "Mild"}}], "unknown grades"),
        ([{**_rows("1")[0], "term": "x" * 201}], "longer than 200"),
        (["not a row"], "not a term"),
    ],
)
def test_bad_rows_are_refused_whole(administrator, rows, needle):
    good = _rows("10016256")
    with pytest.raises(InvalidCodeList) as refused:
        code_list_load(by=administrator, code=L, version="5.0", rows=good + rows, source="x")
    assert any(needle in m for m in refused.value.messages), refused.value.messages
    _nothing_written()


@pytest.mark.django_db
def test_no_rows_is_refused(administrator):
    with pytest.raises(InvalidCodeList, match="1 problem"):
        code_list_load(by=administrator, code=L, version="5.0", rows=[], source="x")
    _nothing_written()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("code", {"code": "CTCAE v5"}),
        ("version", {"version": ""}),
        ("version", {"version": "5.0 final release"}),
        ("source", {"source": "  "}),
    ],
)
def test_a_malformed_code_version_or_source_is_refused(administrator, field, kwargs):
    args = {"code": L, "version": "5.0", "rows": _rows("10028813"), "source": "x"} | kwargs
    with pytest.raises(InvalidCodeList) as refused:
        code_list_load(by=administrator, **args)
    assert field in refused.value.field_errors
    _nothing_written()


@pytest.mark.django_db(transaction=True)
def test_two_loads_of_one_version_at_once_load_it_once(make_user):
    """Two administrators load the same version at the same moment: one load is kept,
    the other is refused, and one version is current."""
    users = [make_user("administrator", None) for _ in range(2)]
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def load(user):
        try:
            barrier.wait()
            code_list_load(by=user, code=L, version="5.0", rows=_rows("10028813"), source="x")
            outcomes.append("loaded")
        except VersionAlreadyLoaded:
            outcomes.append("refused")
        finally:
            connections.close_all()

    threads = [threading.Thread(target=load, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["loaded", "refused"]
    assert CodeList.objects.filter(code=L, is_current=True).count() == 1
    assert CodeListTerm.objects.count() == 1


# --- manage.py load_ctcae --------------------------------------------------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("path", [CSV, XLSX], ids=["csv", "xlsx"])
def test_load_ctcae_reads_ncis_layout(administrator, path, capsys):
    call_command("load_ctcae", str(path), "--user", "administrator", "--version", "5.0")
    assert "Loaded 5 terms as ctcae_v5 5.0" in capsys.readouterr().out
    loaded = CodeList.objects.get(code=L, version="5.0")
    assert loaded.is_current and loaded.loaded_by == administrator
    assert path.name in loaded.source and "sha256" in loaded.source
    assert codes(L) == SMALL_CODES
    nausea = term(L, "10028813")
    assert nausea.soc == "Gastrointestinal disorders"
    assert nausea.grades[3:] == (None, None)  # NCI's "-": the grade does not exist
    assert nausea.term_nl == "Misselijkheid"  # carried over from the shipped list
    assert nausea.definition.startswith("A disorder characterized")
    infection = term(L, "10048038")
    assert infection.grade(1) is None and infection.grade(5) == "Death"
    assert term(L, "10018065").needs_specification
    anemia = term(L, "10002272")
    with translation.override("nl"):
        assert anemia.label == "Anemia"  # no Dutch label: the English term
    # audited under the loading user, as the command's actor
    context = events(CodeList).get().pgh_context.metadata
    assert context["user"] == administrator.pk and context["actor"] == "load_ctcae"
    assert events(CodeListTerm).count() == 5


@pytest.mark.django_db
def test_load_ctcae_twice_is_refused_with_a_message(administrator):
    call_command("load_ctcae", str(CSV), "--user", "administrator")
    with pytest.raises(CommandError, match="already loaded"):
        call_command("load_ctcae", str(XLSX), "--user", "administrator")
    assert CodeListTerm.objects.count() == 5


@pytest.mark.django_db
def test_load_ctcae_by_a_nurse_or_an_unknown_user_is_refused(nurse_a):
    with pytest.raises(CommandError, match="Only administrators and data managers"):
        call_command("load_ctcae", str(CSV), "--user", "nurse_a")
    with pytest.raises(CommandError, match="No active user"):
        call_command("load_ctcae", str(CSV), "--user", "nobody")
    _nothing_written()


def _csv_variant(tmp_path: Path, edit) -> Path:
    lines = CSV.read_text(encoding="utf-8").splitlines()
    path = tmp_path / "variant.csv"
    path.write_text("\n".join(edit(lines)) + "\n", encoding="utf-8")
    return path


BAD_CSV = {
    "missing grade column": (
        lambda lines: [lines[0].replace(",Grade 4", ",Grade four")] + lines[1:],
        "lacks the column(s) Grade 4",
    ),
    "no heading row": (lambda lines: lines[1:], "no heading row"),
    "code not 8 digits": (
        lambda lines: [lines[0], lines[1].replace("10048038", "1004803")] + lines[2:],
        "row 2: the MedDRA code '1004803' is not 8 digits",
    ),
    "duplicate code": (
        lambda lines: [*lines, lines[2]],
        "code 10028813 appears twice (first at row 3)",
    ),
    "empty term": (
        lambda lines: [lines[0], lines[1].replace(",Wound infection,", ",,")] + lines[2:],
        "row 2 (10048038): the term is missing",
    ),
    "no grades": (
        lambda lines: [lines[0], "10099999,Vascular disorders,Something,-,-,-,-,-,x,-"],
        "row 2 (10099999): no grade has a description",
    ),
    "heading only": (lambda lines: lines[:1], "no terms below its heading row"),
    "semicolons": (
        # a Dutch spreadsheet program's CSV: read with its own delimiter, then the bad code
        lambda lines: [
            "MedDRA Code;MedDRA SOC;CTCAE Term;Grade 1;Grade 2;Grade 3;Grade 4;Grade 5",
            "ABC;Vascular disorders;Something;Mild;-;-;-;-",
        ],
        "row 2: the MedDRA code 'ABC' is not 8 digits",
    ),
}


@pytest.mark.django_db
@pytest.mark.parametrize("case", list(BAD_CSV))
def test_a_bad_csv_is_refused_whole_with_a_clear_message(administrator, tmp_path, case):
    edit, message = BAD_CSV[case]
    path = _csv_variant(tmp_path, edit)
    with pytest.raises(CommandError) as refused:
        call_command("load_ctcae", str(path), "--user", "administrator")
    assert message in str(refused.value)
    _nothing_written()


@pytest.mark.django_db
def test_older_heading_spellings_are_read(administrator, tmp_path):
    """Headings as older CTCAE sheets spell them ("MedDRA v12.0 Code", "CTCAE v4.0 Term",
    "MedDRA System Organ Class"); a definition of "-" is no definition."""
    path = _csv_variant(
        tmp_path,
        lambda lines: [
            "MedDRA v12.0 Code,MedDRA System Organ Class,CTCAE v4.0 Term,Grade 1,Grade 2,"
            "Grade 3,Grade 4,Grade 5,Definition",
            "10028813,Gastrointestinal disorders,Nausea,Mild,Moderate,Severe,-,-,-",
        ],
    )
    call_command("load_ctcae", str(path), "--user", "administrator", "--version", "4.03")
    assert current_version(L) == "4.03"
    assert term(L, "10028813").definition == ""


@pytest.mark.django_db
def test_a_semicolon_csv_loads(administrator, tmp_path):
    path = _csv_variant(
        tmp_path,
        lambda lines: [
            "MedDRA Code;MedDRA SOC;CTCAE Term;Grade 1;Grade 2;Grade 3;Grade 4;Grade 5",
            "10028813;Gastrointestinal disorders;Nausea;Mild;Moderate;Severe;-;-",
        ],
    )
    call_command("load_ctcae", str(path), "--user", "administrator")
    assert codes(L) == {"10028813"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("ctcae.xlsx", b"PK\x03\x04 not really a workbook", "not a readable XLSX workbook"),
        ("ctcae.csv", "MedDRA Code,CTCAE Term\n1,Caf\xe9\n".encode("latin-1"), "not UTF-8"),
        ("ctcae.pdf", b"%PDF-1.4", "neither a .csv nor a .xlsx"),
        ("ctcae.csv", b"", "no heading row"),
    ],
)
def test_an_unreadable_file_is_refused(administrator, tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CommandError, match=message):
        call_command("load_ctcae", str(path), "--user", "administrator")
    _nothing_written()


@pytest.mark.django_db
def test_a_missing_file_is_refused(administrator, tmp_path):
    with pytest.raises(CommandError, match="There is no file"):
        call_command("load_ctcae", str(tmp_path / "absent.xlsx"), "--user", "administrator")
    _nothing_written()


@pytest.mark.django_db
def test_a_bad_xlsx_row_is_refused_whole(administrator, tmp_path):
    path = tmp_path / "bad.xlsx"
    shutil.copy(XLSX, path)
    workbook = load_workbook(path)
    sheet = workbook["CTCAE v5.0 Clean Copy"]
    sheet["C3"] = None  # Nausea's term
    workbook.save(path)
    with pytest.raises(CommandError, match=r"row 3 \(10028813\): the term is missing"):
        call_command("load_ctcae", str(path), "--user", "administrator")
    _nothing_written()


@pytest.mark.django_db
def test_the_admin_lists_loaded_versions_read_only(client, administrator):
    code_list_load(
        by=administrator, code=L, version="5.0", rows=_rows("10028813"), source="test rows"
    )
    administrator.is_staff = administrator.is_superuser = True
    administrator.save()
    client.force_login(administrator)
    row = CodeList.objects.get()
    assert "ctcae_v5" in client.get("/admin/crf/codelist/").content.decode()
    detail = client.get(f"/admin/crf/codelist/{row.pk}/change/").content.decode()
    assert "10028813" in detail and 'name="_save"' not in detail
    assert client.get("/admin/crf/codelist/add/").status_code == 403
    assert client.post(f"/admin/crf/codelist/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.post(f"/admin/crf/codelist/{row.pk}/change/", {"version": "x"}).status_code == 403
    row.refresh_from_db()
    assert row.version == "5.0" and CodeListTerm.objects.count() == 1


@pytest.mark.django_db
def test_a_refusal_reads_in_dutch(administrator):
    with translation.override("nl"), pytest.raises(InvalidCodeList) as refused:
        code_list_load(by=administrator, code=L, version="5.0", rows=[], source="x")
    assert "Er zijn geen termen om te laden." in refused.value.messages
    _nothing_written()
