from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    name = "randomization"

    def ready(self) -> None:
        from core import hooks
        from randomization import (
            checks,  # noqa: F401 - registers the system checks
            demo,
            selectors,
        )

        hooks.participant_records_after.subscribe(selectors.participant_records_after)
        hooks.participant_panels.subscribe(selectors.participant_panel)
        hooks.not_informed_records.subscribe(selectors.control_allocations)
        hooks.demo_seed.subscribe(demo.seed)
