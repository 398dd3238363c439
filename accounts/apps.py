from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _sync_roles(sender, **kwargs) -> None:
    from accounts.roles import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        # Groups need every app's permissions, which exist only after migrate.
        post_migrate.connect(_sync_roles, sender=self, dispatch_uid="accounts_sync_roles")
