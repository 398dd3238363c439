from django.apps import AppConfig


class SymptomsConfig(AppConfig):
    name = "symptoms"
    verbose_name = "Symptoms and adherence"

    def ready(self) -> None:
        from symptoms import receivers  # noqa: F401  (connects the signal receiver)
