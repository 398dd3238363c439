from django.contrib import admin

from accounts.admin_mixins import ReadOnlyAdminMixin
from accounts.models import is_clinic_admin
from audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Clinic admins read the trail; nobody adds, edits or deletes it."""

    list_display = ["at", "actor_email", "action", "patient_ref", "object_type", "object_id", "ip"]
    list_filter = [
        "action",
        ("actor", admin.RelatedOnlyFieldListFilter),
        ("patient", admin.RelatedOnlyFieldListFilter),
    ]
    search_fields = ["actor_email", "patient_ref", "object_id", "path"]
    date_hierarchy = "at"
    list_per_page = 100
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("actor", "patient__user")

    def has_module_permission(self, request) -> bool:
        return is_clinic_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_clinic_admin(request.user)
