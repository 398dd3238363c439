from django.core.management.base import BaseCommand

from programs.services import library_sync


class Command(BaseCommand):
    help = "Load or update the exercise library and the built-in program templates (idempotent)."

    def handle(self, *args, **options) -> None:
        result = library_sync()
        self.stdout.write(
            self.style.SUCCESS(
                "Library up to date: {exercises_created} exercises and {templates_created} "
                "templates created.".format(**result)
            )
        )
