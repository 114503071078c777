"""System checks for trial configuration (run with ``manage.py check --database default``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.apps import AppConfig
from django.core.checks import CheckMessage, Tags, Warning, register
from django.db.utils import DatabaseError


@register(Tags.database)
def trial_configuration(
    app_configs: Iterable[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    from randomization.models import Criterion, Sequence, SequenceStatus, Trial, TrialStatus
    from randomization.selectors import current_environment

    problems: list[CheckMessage] = []
    try:
        trials = list(Trial.objects.prefetch_related("arms"))
        env = current_environment()
        for trial in trials:
            if trial.arms.count() < 2:
                problems.append(
                    Warning(f"Trial {trial.code} has fewer than two arms.", id="randomization.W001")
                )
            if not Criterion.objects.filter(
                trial=trial, protocol_version=trial.protocol_version
            ).exists():
                problems.append(
                    Warning(
                        f"Trial {trial.code} has no eligibility criteria for protocol version "
                        f"{trial.protocol_version}.",
                        id="randomization.W002",
                    )
                )
            if (
                trial.status == TrialStatus.RECRUITING
                and not Sequence.objects.filter(
                    trial=trial, environment=env, status=SequenceStatus.ACTIVE
                ).exists()
            ):
                problems.append(
                    Warning(
                        f"Trial {trial.code} is recruiting but has no active {env} sequence.",
                        hint="A statistician with the sequence permission generates and activates one.",
                        id="randomization.W003",
                    )
                )
    except DatabaseError:  # pragma: no cover - database not migrated yet
        return []
    return problems
