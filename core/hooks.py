"""Named hooks: how a lower app lets a higher app take part in its writes without importing it.

The layering is core < cohort < randomization < crf < endpoints, and a lower app never
imports a higher one. When a lower app's service needs a higher app's work or knowledge
(a death must not predate an allocation; a withdrawal cancels questionnaires), the lower
service fires a hook defined here, and the higher app subscribes in ``AppConfig.ready()``::

    # crf/apps.py
    def ready(self):
        from core import hooks
        from crf import selectors
        hooks.participant_records_after.subscribe(selectors.participant_records_after)

Unlike a Django signal:

- every hook is declared here, once, with its keyword arguments documented; firing with
  other arguments is a programming error (``TypeError``);
- a hook is fired by a service inside its own transaction (firing outside one raises
  ``RuntimeError``), and a subscriber's exception propagates: it rolls the whole write back;
- subscribers run in registration order (``INSTALLED_APPS`` order), and
  ``tests/core/test_hooks.py`` pins each hook's subscriber list.

Two kinds: an *action* hook (:meth:`Hook.fire`) asks subscribers to do their part of the
write; a *query* hook (:meth:`Hook.collect`) asks them for findings (conflicts, reasons)
that the firing service judges, e.g. to refuse with the conflicting record named.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction

ACTION = "action"
QUERY = "query"


@dataclass(frozen=True)
class Finding:
    """One record a query hook's subscriber reports: ``kind`` is machine-readable
    (``allocation``, ``questionnaire_completed``), ``text`` names the record for a person
    (already translated), ``on`` is the record's date."""

    kind: str
    text: str
    on: date | None = None


@dataclass
class Hook:
    """A named extension point with a fixed set of keyword arguments."""

    name: str
    kind: str
    kwargs: tuple[str, ...]
    doc: str
    _subscribers: list[Callable[..., Any]] = field(default_factory=list, repr=False)

    def subscribe(self, func: Callable[..., Any]) -> Callable[..., Any]:
        """Add ``func`` (called with the hook's keyword arguments only). Usable as a
        decorator; subscribing the same function twice is a no-op."""
        if func not in self._subscribers:
            self._subscribers.append(func)
        return func

    @property
    def subscribers(self) -> list[str]:
        """The subscribers' dotted names, in call order (what the pin test compares)."""
        return [f"{f.__module__}.{f.__qualname__}" for f in self._subscribers]

    def _check_call(self, kwargs: dict[str, Any]) -> None:
        if set(kwargs) != set(self.kwargs):
            raise TypeError(
                f"hook {self.name!r} takes exactly {sorted(self.kwargs)}, got {sorted(kwargs)}"
            )
        if not transaction.get_connection().in_atomic_block:
            raise RuntimeError(f"hook {self.name!r} must be fired inside the service's transaction")

    def fire(self, **kwargs: Any) -> None:
        """Action hook: call every subscriber; the first exception propagates."""
        if self.kind != ACTION:
            raise TypeError(f"hook {self.name!r} is a query hook: use collect()")
        self._check_call(kwargs)
        for func in list(self._subscribers):
            func(**kwargs)

    def collect(self, **kwargs: Any) -> list[Any]:
        """Query hook: every subscriber's findings (an iterable each), in subscriber order."""
        if self.kind != QUERY:
            raise TypeError(f"hook {self.name!r} is an action hook: use fire()")
        self._check_call(kwargs)
        found: list[Any] = []
        for func in list(self._subscribers):
            result: Iterable[Any] | None = func(**kwargs)
            found.extend(result or ())
        return found


HOOKS: dict[str, Hook] = {}


def define(name: str, *, kind: str, kwargs: Iterable[str], doc: str) -> Hook:
    """Declare a hook (here, in this module, so every hook is in one place)."""
    if name in HOOKS:
        raise ValueError(f"hook {name!r} is already defined")
    if kind not in (ACTION, QUERY):
        raise ValueError(f"unknown hook kind {kind!r}")
    hook = Hook(name=name, kind=kind, kwargs=tuple(kwargs), doc=doc)
    HOOKS[name] = hook
    return hook


# --- the hooks ---------------------------------------------------------------------------------

# What a death or a withdrawal stops (the ``activities`` of participant_records_after).
QUESTIONNAIRES = "questionnaires"  # answering questionnaires
TRIAL = "trial"  # being randomised, deciding on the offered intervention
TREATMENT = "treatment"  # receiving the trial treatment (only death stops it for sure)

participant_records_after = define(
    "participant_records_after",
    kind=QUERY,
    kwargs=("participant", "after", "activities"),
    doc="""Records of ``participant`` (a cohort.Participant) dated after ``after`` (a date)
    that belong to one of ``activities`` (a frozenset of QUESTIONNAIRES, TRIAL, TREATMENT).
    Each subscriber returns a list of :class:`Finding`. Fired by cohort before it writes a
    death (every activity) or a withdrawal (the activities its scope stops): a finding means
    the new date contradicts a stored record, and the write is refused naming it.""",
)
