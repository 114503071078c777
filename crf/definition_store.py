"""The register of shipped definitions (:class:`crf.models.FormDefinition`).

The definition files are the source; after ``migrate`` every definition's current
version is recorded with the SHA-256 of its file, so a record can always be read with the
definition it was entered with, and a file edited without a version bump is refused
(the file no longer matches what that version was).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from django.db import transaction

from core.audit import system_actor
from crf import instruments

if TYPE_CHECKING:  # pragma: no cover
    from crf.models import FormDefinition

__all__ = [
    "DefinitionChanged",
    "ShippedDefinition",
    "changed_definitions",
    "current_definition",
    "definition_of",
    "form_definitions_sync",
    "shipped_definitions",
]


class DefinitionChanged(ValueError):
    """A definition file differs from what its version was when it was first loaded."""


@dataclass(frozen=True)
class ShippedDefinition:
    code: str
    version: str
    kind: str
    occurs: str
    title: dict[str, str]
    content: dict[str, object]
    sha256: str
    source: str


def shipped_definitions() -> list[ShippedDefinition]:
    """Every definition file of the package, loaded and checked (a broken one raises)."""
    shipped = []
    for kind in instruments.DEFINITION_KINDS:
        for code in instruments.all_codes(kind):
            definition = instruments.load(code)
            source, raw = instruments.definition_source(code)
            shipped.append(
                ShippedDefinition(
                    code=code,
                    version=definition.version,
                    kind=definition.kind,
                    occurs=definition.occurs,
                    title=dict(definition.title),
                    content=json.loads(raw.decode("utf-8")),
                    sha256=instruments.definition_sha256(code),
                    source=source,
                )
            )
    return shipped


def changed_definitions(*, using: str = "default") -> list[str]:
    """Messages for definition files whose content changed under an already loaded version."""
    from crf.models import FormDefinition

    shipped = {(d.code, d.version): d for d in shipped_definitions()}
    stored = FormDefinition.objects.using(using).filter(
        code__in={code for code, _version in shipped}
    )
    return [
        f"{shipped[row.code, row.version].source} changed, but version {row.version} was "
        "loaded before with different content: give the changed file a new version."
        for row in stored.only("code", "version", "sha256")
        if (row.code, row.version) in shipped
        and shipped[row.code, row.version].sha256 != row.sha256
    ]


def form_definitions_sync(*, using: str = "default") -> list[str]:
    """Record every shipped definition version not yet in the register; idempotent.

    Returns ``"code version"`` of what was added. Refuses (``DefinitionChanged``, nothing
    written) when a file changed under a version that is already registered."""
    from crf.models import FormDefinition

    changed = changed_definitions(using=using)
    if changed:
        raise DefinitionChanged(" ".join(changed))
    added = []
    with transaction.atomic(using=using), system_actor("form_definitions_sync"):
        known = set(FormDefinition.objects.using(using).values_list("code", "version"))
        for definition in shipped_definitions():
            if (definition.code, definition.version) in known:
                continue
            FormDefinition.objects.using(using).create(
                code=definition.code,
                version=definition.version,
                kind=definition.kind,
                occurs=definition.occurs,
                title=definition.title,
                content=definition.content,
                sha256=definition.sha256,
            )
            added.append(f"{definition.code} {definition.version}")
    return added


def current_definition(code: str) -> FormDefinition:
    """The register row of the shipped version of definition ``code`` (one query): what a
    new record is entered with. ``FormDefinition.DoesNotExist`` when ``migrate`` (which
    fills the register) has not run since the file's version changed."""
    from crf.models import FormDefinition

    return FormDefinition.objects.get(code=code, version=instruments.load(code).version)


@lru_cache(maxsize=128)
def _built(code: str, version: str, sha256: str, content: str) -> instruments.Instrument:
    return instruments.instrument_from_data(json.loads(content), source=f"{code} {version}")


def definition_of(definition: FormDefinition) -> instruments.Instrument:
    """The definition a record was entered with: the shipped file when the register row is
    its current version, otherwise built from the row's stored content (rows never change;
    built once per process)."""
    shipped = instruments.load(definition.code)
    if shipped.version == definition.version:
        return shipped
    return _built(
        definition.code,
        definition.version,
        definition.sha256,
        json.dumps(definition.content, sort_keys=True),
    )
