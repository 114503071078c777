from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CrfConfig(AppConfig):
    name = "crf"

    def ready(self) -> None:
        from core import hooks
        from crf import checks, demo, selectors, services  # noqa: F401 (checks register)

        hooks.participant_records_after.subscribe(selectors.participant_records_after)
        hooks.contact_stopped.subscribe(services.questionnaires_cancel_pending)
        hooks.treatment_started.subscribe(services.schedule_anchor)
        hooks.treatment_started.subscribe(services.form_expectations_on_day0)
        hooks.contact_stopped.subscribe(services.form_expectations_on_contact_stopped)
        hooks.allocation_changed.subscribe(services.form_expectations_on_allocation)
        hooks.deviation_reported.subscribe(services.deviation_log_entry)
        hooks.participant_panels.subscribe(selectors.participant_panel)
        hooks.participant_panels.subscribe(selectors.forms_panel)
        hooks.demo_seed.subscribe(demo.seed)
        post_migrate.connect(_register_definitions, sender=self)


def _register_definitions(*, using: str = "default", apps: Any = None, **kwargs: Any) -> None:
    """After migrate: record the shipped definition versions (refused when a file changed
    under a registered version)."""
    from django.db import connections

    from crf.definition_store import form_definitions_sync
    from crf.models import FormDefinition

    if FormDefinition._meta.db_table not in connections[using].introspection.table_names():
        return  # migrated to a state before the register existed
    form_definitions_sync(using=using)
