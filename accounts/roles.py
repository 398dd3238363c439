"""Staff roles as groups with model permissions, kept in sync after migrate.

Scoping (a therapist sees only their own patients) is enforced by the admin
querysets and selectors, not by these permissions; the permissions only
decide which admin screens a role has at all.
"""

from __future__ import annotations

from django.apps import apps as global_apps
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission

from accounts.models import CLINIC_ADMINS_GROUP, THERAPISTS_GROUP

THERAPIST_PERMISSIONS = {
    "patients.patient": ["add", "change", "view"],
    "patients.assignment": ["add", "change", "view"],
    "patients.phasechange": ["view"],
    "programs.exercise": ["view"],
    "programs.programtemplate": ["add", "change", "delete", "view"],
    "programs.templatephase": ["add", "change", "delete", "view"],
    "programs.prescribedexercise": ["add", "change", "delete", "view"],
    "symptoms.sessionlog": ["view"],
    "symptoms.painreport": ["view"],
    "symptoms.redflagreport": ["view"],
    "symptoms.alert": ["view", "change"],
    "reminders.reminderslot": ["view"],
}

CLINIC_ADMIN_PERMISSIONS = {
    **THERAPIST_PERMISSIONS,
    "accounts.user": ["add", "change", "view"],
    "patients.patient": ["add", "change", "delete", "view"],
    "patients.assignment": ["add", "change", "delete", "view"],
    "programs.exercise": ["add", "change", "view"],
}


def _permissions(spec: dict[str, list[str]]) -> list[Permission]:
    perms = []
    for label, actions in spec.items():
        app_label, model = label.split(".")
        for action in actions:
            perms.append(
                Permission.objects.get(
                    content_type__app_label=app_label, codename=f"{action}_{model}"
                )
            )
    return perms


def roles_sync() -> None:
    """Create the staff groups and give them exactly their permissions."""
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0)
    for name, spec in (
        (THERAPISTS_GROUP, THERAPIST_PERMISSIONS),
        (CLINIC_ADMINS_GROUP, CLINIC_ADMIN_PERMISSIONS),
    ):
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(_permissions(spec))
