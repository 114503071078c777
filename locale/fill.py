"""Fill locale/nl/LC_MESSAGES/django.po from the per-app glossaries locale/nl_*.json.

Each app keeps its Dutch translations in its own JSON file ({"English": "Nederlands"}),
so people working on different apps never edit the same .po lines. `make messages`
extracts the strings, runs this, then compiles. A translation already in the .po
is kept unless a glossary gives another; entries still empty are listed.
"""

import json
import sys
from pathlib import Path

import polib

HERE = Path(__file__).resolve().parent


def main() -> int:
    glossary: dict[str, str] = {}
    source: dict[str, str] = {}
    conflicts = 0
    for path in sorted(HERE.glob("nl_*.json")):
        for msgid, msgstr in json.loads(path.read_text(encoding="utf-8")).items():
            if msgid in glossary and glossary[msgid] != msgstr:
                conflicts += 1
                print(
                    f"conflict: {msgid!r} is {glossary[msgid]!r} in {source[msgid]} "
                    f"but {msgstr!r} in {path.name} (use a context or another msgid)",
                    file=sys.stderr,
                )
            glossary[msgid], source[msgid] = msgstr, path.name
    po_path = HERE / "nl" / "LC_MESSAGES" / "django.po"
    po = polib.pofile(str(po_path))
    missing = []
    for entry in po:
        if entry.obsolete:
            continue
        found = glossary.get(entry.msgid)
        if entry.msgid_plural:
            # Dutch has two forms: the glossary gives ["one", "many"] for the singular
            # msgid, or the singular and the plural msgid as two keys.
            if isinstance(found, list) and len(found) == 2:
                entry.msgstr_plural = {0: found[0], 1: found[1]}
            elif isinstance(found, str) and isinstance(glossary.get(entry.msgid_plural), str):
                entry.msgstr_plural = {0: found, 1: glossary[entry.msgid_plural]}
        elif isinstance(found, str):
            entry.msgstr = found
        filled = all(entry.msgstr_plural.values()) if entry.msgid_plural else entry.msgstr
        if found is not None and filled and "fuzzy" in entry.flags:
            # the glossary is the translation: msgmerge's fuzzy guess is replaced
            entry.flags.remove("fuzzy")
            entry.previous_msgid = entry.previous_msgid_plural = None
        if not filled or "fuzzy" in entry.flags:
            missing.append(entry.msgid)
    po.save(str(po_path))
    for msgid in missing:
        print(f"untranslated: {msgid!r}", file=sys.stderr)
    print(f"{len(po)} entries, {len(missing)} untranslated, {conflicts} conflicting")
    return 1 if conflicts else 0


if __name__ == "__main__":
    sys.exit(main())
