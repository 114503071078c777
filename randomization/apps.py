from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    name = "randomization"

    def ready(self) -> None:
        from core import hooks
        from randomization import (
            checks,  # noqa: F401 - registers the system checks
            selectors,
        )

        hooks.participant_records_after.subscribe(selectors.participant_records_after)
