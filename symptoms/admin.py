"""What patients logged, read-only in the clinic admin, scoped like the patients.

A therapist sees only their own patients' rows (``patients_for_staff``); a
clinic admin sees everyone's; anything outside that scope 404s. Nothing here
can be added, changed or deleted: the rows are the patient's record. Alerts
can be acknowledged, which records who and when.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_mixins import NotFoundOutsideScopeMixin, ReadOnlyAdminMixin
from audit.admin_mixins import AuditedAdminMixin
from patients.selectors import patients_for_staff
from symptoms import services
from symptoms.models import Alert, PainReport, RedFlagReport, SessionLog


def _is_clinical_staff(user) -> bool:
    return bool(
        user.is_active
        and user.is_staff
        and (getattr(user, "is_clinic_admin", False) or getattr(user, "is_therapist", False))
    )


class ReadOnlyScopedAdmin(
    ReadOnlyAdminMixin, AuditedAdminMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin
):
    """Read-only, and only rows of patients this staff member may see."""

    list_select_related = ["patient__user"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(patient__in=patients_for_staff(request.user).values("pk"))
            .select_related("patient__user")
        )

    def has_module_permission(self, request) -> bool:
        return _is_clinical_staff(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return _is_clinical_staff(request.user)


@admin.register(SessionLog)
class SessionLogAdmin(ReadOnlyScopedAdmin):
    list_display = ["patient", "local_date", "logged_at", "phase", "sessions_prescribed", "source"]
    list_filter = ["source", "phase", "local_date"]
    search_fields = ["patient__user__email", "patient__user__full_name"]
    date_hierarchy = "local_date"
    exclude = ["idempotency_key"]


@admin.register(PainReport)
class PainReportAdmin(ReadOnlyScopedAdmin):
    list_display = ["patient", "reported_at", "score", "location", "trend"]
    list_filter = ["trend", "location"]
    search_fields = ["patient__user__email", "patient__user__full_name"]
    date_hierarchy = "reported_at"


@admin.register(RedFlagReport)
class RedFlagReportAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "patient",
        "reported_at",
        "action",
        "bladder",
        "bowel",
        "saddle_numbness",
        "leg_weakness",
    ]
    list_filter = ["action"]
    search_fields = ["patient__user__email", "patient__user__full_name"]
    date_hierarchy = "reported_at"


class OpenFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "open"

    def lookups(self, request, model_admin):
        return [("yes", _("Open")), ("no", _("Acknowledged"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(acknowledged_at__isnull=True)
        if self.value() == "no":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset


@admin.register(Alert)
class AlertAdmin(ReadOnlyScopedAdmin):
    list_display = [
        "created_at",
        "severity",
        "kind",
        "patient",
        "message",
        "emailed_at",
        "acknowledged_at",
        "acknowledged_by",
    ]
    list_filter = [OpenFilter, "severity", "kind"]
    list_select_related = ["patient__user", "acknowledged_by"]
    search_fields = ["patient__user__email", "patient__user__full_name", "message"]
    actions = ["acknowledge"]

    def has_acknowledge_permission(self, request) -> bool:
        return _is_clinical_staff(request.user)

    @admin.action(description=_("Acknowledge the selected alerts"), permissions=["acknowledge"])
    def acknowledge(self, request, queryset) -> None:
        # One UPDATE for the whole selection; the queryset is already scoped.
        done = services.alert_acknowledge_many(
            alert_ids=list(queryset.values_list("pk", flat=True)), user=request.user
        )
        self.message_user(
            request,
            ngettext("%(count)d alert acknowledged.", "%(count)d alerts acknowledged.", done)
            % {"count": done},
            messages.SUCCESS,
        )
