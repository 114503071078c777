from django.apps import AppConfig


class CrfConfig(AppConfig):
    name = "crf"

    def ready(self) -> None:
        from core import hooks
        from crf import demo, selectors, services

        hooks.participant_records_after.subscribe(selectors.participant_records_after)
        hooks.contact_stopped.subscribe(services.questionnaires_cancel_pending)
        hooks.treatment_started.subscribe(services.schedule_anchor)
        hooks.participant_panels.subscribe(selectors.participant_panel)
        hooks.demo_seed.subscribe(demo.seed)
