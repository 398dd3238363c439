from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save


def _load_library(sender, using="default", **kwargs) -> None:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    from programs.services import library_sync

    # Only on a fully migrated database: `migrate <app> <earlier migration>`
    # leaves tables behind the models, which library_sync writes through.
    executor = MigrationExecutor(connections[using])
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        return
    library_sync()


class ProgramsConfig(AppConfig):
    name = "programs"
    verbose_name = "Exercise library and programs"

    def ready(self) -> None:
        # The library is reference data every install needs: load it after each
        # migrate (idempotent). `manage.py load_library` does the same by hand.
        post_migrate.connect(_load_library, sender=self, dispatch_uid="programs_load_library")
        from programs import signals
        from programs.models import Exercise, PrescribedExercise, TemplatePhase

        for signal in (post_save, post_delete):
            signal.connect(signals.phase_changed, sender=TemplatePhase)
            signal.connect(signals.prescribed_changed, sender=PrescribedExercise)
        post_save.connect(signals.exercise_saved, sender=Exercise)
