"""Dutch is the default language: every extracted string has a Dutch translation,
and the compiled catalogue matches the source."""

import gettext
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "locale" / "nl" / "LC_MESSAGES" / "django.po"
MO = PO.with_suffix(".mo")


def _unquote(chunks: list[str]) -> str:
    text = "".join(chunks)
    return text.replace('\\"', '"').replace("\\n", "\n").replace("\\t", "\t").replace("\\\\", "\\")


def parse_po(path: Path) -> list[dict]:
    """A small .po reader: entries with msgid, msgstr (or plural forms) and flags."""
    entries, current, field = [], None, None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if current:
                entries.append(current)
            current, field = None, None
            continue
        current = current or {"flags": set(), "msgid": [], "msgid_plural": [], "msgstr": {}}
        if line.startswith("#,"):
            current["flags"].update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif m := re.match(r'^(msgid|msgid_plural|msgstr(?:\[(\d+)\])?)\s+"(.*)"$', line):
            key, index, value = m.group(1), m.group(2), m.group(3)
            if key.startswith("msgstr"):
                field = ("msgstr", int(index) if index else 0)
                current["msgstr"][field[1]] = [value]
            else:
                field = (key, None)
                current[key] = [value]
        elif line.startswith('"') and field:
            if field[0] == "msgstr":
                current["msgstr"][field[1]].append(line[1:-1])
            else:
                current[field[0]].append(line[1:-1])
    result = []
    for e in entries:
        msgid = _unquote(e["msgid"])
        if not msgid:
            continue  # the header
        result.append(
            {
                "msgid": msgid,
                "plural": bool(e["msgid_plural"]),
                "msgstr": {k: _unquote(v) for k, v in e["msgstr"].items()},
                "fuzzy": "fuzzy" in e["flags"],
            }
        )
    return result


def test_every_string_has_a_dutch_translation():
    entries = parse_po(PO)
    assert len(entries) > 50
    untranslated = [e["msgid"] for e in entries if not all(e["msgstr"].values()) or e["fuzzy"]]
    assert not untranslated, f"{len(untranslated)} untranslated: {untranslated[:20]}"


def test_compiled_catalogue_matches_source():
    catalogue = gettext.GNUTranslations(MO.open("rb"))
    stale = [
        e["msgid"]
        for e in parse_po(PO)
        if not e["plural"] and catalogue.gettext(e["msgid"]) != e["msgstr"][0]
    ]
    assert not stale, f"run `make messages`: {stale[:10]}"
