"""Recompute every randomised participant's expected clinical forms (the worklist's cache,
crf.models.FormExpectation) after a change of the rules in crf/expected.py."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from crf.services import form_expectations_refresh
from randomization.models import Allocation


class Command(BaseCommand):
    help = (
        "Recompute the expected clinical forms of every allocated participant (run after a "
        "change of crf/expected.py RULES or of the timepoint windows)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        allocations = Allocation.objects.select_related("participant", "arm", "offer").order_by(
            "pk"
        )
        participants = rows = 0
        for allocation in allocations.iterator(chunk_size=200):
            with transaction.atomic():
                rows += form_expectations_refresh(allocation=allocation)
            participants += 1
        self.stdout.write(f"{participants} participants, {rows} expected forms.")
