from django.apps import AppConfig


class RandomizationConfig(AppConfig):
    name = "randomization"

    def ready(self) -> None:
        from randomization import checks  # noqa: F401 - registers the system checks
