"""System checks for the definitions (questionnaires and clinical forms).

crf.E001: every definition file loads and passes the loader's checks (known item kinds,
conditions on earlier items only, unique codes, known computed functions with their
inputs, known scales, code lists and checks, repeats with fields), so a broken definition
stops the start-up instead of a nurse's save. crf.E002 (with the database): a file whose
content changed under a version that is already registered — bump the version.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from importlib import resources
from typing import Any

from django.apps import AppConfig
from django.core.checks import Error, Tags, register
from django.db import DatabaseError

from crf import instruments


def definition_sources() -> Iterator[tuple[str, str, bytes]]:
    """``(file name, kind, bytes)`` of every definition file of the package (every JSON
    file of the clinical folder, so a misnamed one is reported rather than skipped)."""
    package = resources.files("crf")
    for kind in instruments.DEFINITION_KINDS:
        folder = instruments.FOLDERS[kind]
        for name in instruments.definition_file_names(kind):
            yield f"crf/{folder}/{name}", kind, package.joinpath(folder, name).read_bytes()


def definition_errors(sources: Iterable[tuple[str, str, bytes]]) -> list[Error]:
    """crf.E001 for each source that is not a valid definition of its folder's kind."""
    errors = []
    seen: dict[str, str] = {}
    for name, kind, raw in sources:
        try:
            data = json.loads(raw.decode("utf-8"))
            definition = instruments.instrument_from_data(data, source=name)
            if definition.kind != kind:
                raise ValueError(f"{name}: a file in this folder must be of kind {kind!r}")
            stem = name.rsplit("/", 1)[-1].removesuffix(".json")
            if definition.code != stem:
                raise ValueError(f"{name}: declares code {definition.code!r}")
            if definition.code in seen:
                raise ValueError(
                    f"{name}: code {definition.code!r} is also {seen[definition.code]}"
                )
            seen[definition.code] = name
        except (ValueError, UnicodeDecodeError) as exc:
            errors.append(
                Error(
                    str(exc) if str(exc).startswith(name) else f"{name}: {exc}",
                    hint="Fix the definition file; see crf/instruments.py for the format.",
                    id="crf.E001",
                )
            )
    return errors


DEFINITIONS = "definitions"  # tag: run with every check, or alone with --tag definitions


@register(DEFINITIONS)
def definitions_load(app_configs: Iterable[AppConfig] | None, **kwargs: Any) -> list[Error]:
    return definition_errors(definition_sources())


@register(Tags.database, DEFINITIONS)
def definitions_unchanged(
    app_configs: Iterable[AppConfig] | None,
    *,
    databases: Iterable[str] | None = None,
    **kwargs: Any,
) -> list[Error]:
    from crf.definition_store import changed_definitions

    errors: list[Error] = []
    for alias in databases or ():
        try:
            changed = changed_definitions(using=alias)
        except (DatabaseError, ValueError):  # not migrated yet, or broken (crf.E001 says)
            continue
        errors.extend(Error(message, id="crf.E002") for message in changed)
    return errors
