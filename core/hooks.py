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

Three kinds: an *action* hook (:meth:`Hook.fire`) asks subscribers to do their part of the
write; a *query* hook (:meth:`Hook.collect`) asks them for findings (conflicts, reasons)
that the firing service judges, e.g. to refuse with the conflicting record named; a
*read* hook (:meth:`Hook.each`) lets a screen of a lower app show what higher apps add
(panels on the participant page), each subscriber called on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import transaction

ACTION = "action"
QUERY = "query"
READ = "read"


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
        if self.kind != READ and not transaction.get_connection().in_atomic_block:
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

    def each(self, **kwargs: Any) -> Iterator[tuple[str, Callable[[], Any]]]:
        """Read hook (a screen asks other apps for what they show): each subscriber's
        dotted name and a call of it with ``kwargs``, so the reader sets its own error
        policy (a participant page stays up when one panel fails). No transaction needed."""
        if self.kind != READ:
            raise TypeError(f"hook {self.name!r} is not a read hook")
        self._check_call(kwargs)
        for func in list(self._subscribers):
            yield f"{func.__module__}.{func.__qualname__}", functools.partial(func, **kwargs)


HOOKS: dict[str, Hook] = {}


def define(name: str, *, kind: str, kwargs: Iterable[str], doc: str) -> Hook:
    """Declare a hook (here, in this module, so every hook is in one place)."""
    if name in HOOKS:
        raise ValueError(f"hook {name!r} is already defined")
    if kind not in (ACTION, QUERY, READ):
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

contact_stopped = define(
    "contact_stopped",
    kind=ACTION,
    kwargs=("participant", "reason"),
    doc="""Questionnaire contact with ``participant`` (a cohort.Participant) stopped at once:
    a withdrawal whose scope stops questionnaires, or a death. ``reason`` (a short code such
    as ``death`` or ``withdrawal:questionnaires``) goes into the audit trail. Subscribers
    stop everything they would send (crf cancels pending questionnaires and their links).""",
)

treatment_started = define(
    "treatment_started",
    kind=ACTION,
    kwargs=("participant", "trial", "day0", "is_actual"),
    doc="""Day 0 of ``participant`` in ``trial`` (a randomization.Trial) was recorded or
    changed: ``day0`` is the date, ``is_actual`` False while it is only planned. Subscribers
    anchor what follows day 0 (crf creates or re-anchors the follow-up schedule).""",
)

allocation_changed = define(
    "allocation_changed",
    kind=ACTION,
    kwargs=("allocation",),
    doc="""What decides a participant's expected forms changed on ``allocation`` (a
    randomization.Allocation): the TwiCs decision was recorded or changed, or the allocation
    was corrected (randomised in error). Subscribers recompute what follows from it (crf
    refreshes the participant's expected clinical forms).""",
)

deviation_reported = define(
    "deviation_reported",
    kind=ACTION,
    kwargs=("allocation", "by", "occurred_on", "deviation_type", "description"),
    doc="""A protocol deviation was recorded outside the clinical forms on ``allocation`` (a
    randomization.Allocation) by ``by``: randomization records a control-arm disclosure.
    ``deviation_type`` is a code of the deviation form's ``deviation_type`` item,
    ``occurred_on`` a date, ``description`` what happened. Subscribers keep the deviations log complete (crf adds the
    entry to the participant's protocol deviation log, as a draft for the nurse to finish).""",
)

participant_panels = define(
    "participant_panels",
    kind=READ,
    kwargs=("user", "participant"),
    doc="""The cohort participant page asks each app for its panel, as seen by ``user``,
    of ``participant``: a dict ``{"template", "context", "timeline", "banner", "day0"}`` or
    None (see cohort.views). A failing subscriber is shown as unavailable and counts as
    "not informed" (never disclose).""",
)

not_informed_records = define(
    "not_informed_records",
    kind=READ,
    kwargs=(),
    doc="""Querysets of records with a ``participant`` foreign key; a participant with any
    such record is never to be told about a trial (TwiCs control arm). Used by cohort for
    the list's flag (one query) and the banner on every cohort screen (no arguments).""",
)

demo_seed = define(
    "demo_seed",
    kind=ACTION,
    kwargs=("stdout",),
    doc="""``manage.py seed_demo`` (DEBUG only): each app adds its demo data after the
    platform's users and sites, writing a line to ``stdout``; every app's ``demo.seed``
    subscribes, in INSTALLED_APPS order, all in one transaction.""",
)
