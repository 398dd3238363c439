from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _load_library(sender, using="default", **kwargs) -> None:
    from programs.services import library_sync

    library_sync()


class ProgramsConfig(AppConfig):
    name = "programs"
    verbose_name = "Exercise library and programs"

    def ready(self) -> None:
        # The library is reference data every install needs: load it after each
        # migrate (idempotent). `manage.py load_library` does the same by hand.
        post_migrate.connect(_load_library, sender=self, dispatch_uid="programs_load_library")
