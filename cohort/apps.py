from django.apps import AppConfig


class CohortConfig(AppConfig):
    name = "cohort"

    def ready(self) -> None:
        from cohort import demo
        from core import hooks

        hooks.demo_seed.subscribe(demo.seed)
