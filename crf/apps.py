from django.apps import AppConfig


class CrfConfig(AppConfig):
    name = "crf"

    def ready(self) -> None:
        from core import hooks
        from crf import selectors

        hooks.participant_records_after.subscribe(selectors.participant_records_after)
