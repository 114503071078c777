"""Re-run the clinical forms' edit checks after a rule change and report what changed."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.audit import system_actor
from crf import instruments
from crf.services import records_recheck


class Command(BaseCommand):
    help = (
        "Re-run the edit checks over every clinical record (or one form's): automatic "
        "queries are opened and closed to match. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--form", choices=instruments.all_codes("clinical"), default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        def progress(done: int, total: int) -> None:
            self.stdout.write(f"{done}/{total} records")

        with system_actor("manage.py crf_recheck"):
            result = records_recheck(form_code=options["form"], progress=progress)
        self.stdout.write(
            f"{result.records} records checked: {result.opened} queries opened, "
            f"{result.closed} closed."
        )
