"""Reminder slots in the clinic admin: read-only, scoped to the staff's patients."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _

from accounts.admin_mixins import NotFoundOutsideScopeMixin, ReadOnlyAdminMixin
from audit.admin_mixins import AuditedAdminMixin
from patients.services import patient_local_today
from reminders.models import ReminderSlot, SlotStatus
from reminders.selectors import reminder_slots_for_staff


def _may_see_patients(request) -> bool:
    """Whoever may view patients may view their reminders (scoping is by queryset)."""
    user = request.user
    return bool(user.is_active and user.is_staff and user.has_perm("patients.view_patient"))


class _TodayAndTomorrow(BaseInlineFormSet):
    """Only the patient's own today and tomorrow, in their time zone."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            today = patient_local_today(self.instance)
            self.queryset = (
                self.queryset.filter(local_date__in=[today, today + dt.timedelta(days=1)])
                .exclude(status=SlotStatus.CANCELLED)
                .order_by("due_at", "slot_number")
            )


class ReminderSlotInline(ReadOnlyAdminMixin, admin.TabularInline):
    """Today's and tomorrow's reminder emails on the patient's page, read-only."""

    model = ReminderSlot
    formset = _TodayAndTomorrow
    verbose_name = _("reminder email")
    verbose_name_plural = _("Reminder emails today and tomorrow (patient's local time)")
    extra = 0
    max_num = 0
    can_delete = False
    fields = ["local_date", "local_time", "session", "status", "reason", "sent_at", "attempts"]
    readonly_fields = fields

    @admin.display(description=_("session"))
    def session(self, obj: ReminderSlot) -> str:
        return f"{obj.slot_number} of {obj.slots_in_day}"

    @admin.display(description=_("why"))
    def reason(self, obj: ReminderSlot) -> str:
        return obj.reason or "—"

    def has_view_permission(self, request, obj=None) -> bool:
        # Display only: left out of POSTs, so saving the patient form needs no
        # formset data for it (the rows may change between load and save), and
        # off the "add patient" page, where there is nothing to show yet.
        url_name = getattr(request.resolver_match, "url_name", "") or ""
        return (
            request.method != "POST"
            and not url_name.endswith("_add")
            and _may_see_patients(request)
        )


@admin.register(ReminderSlot)
class ReminderSlotAdmin(
    ReadOnlyAdminMixin, AuditedAdminMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin
):
    list_display = [
        "patient",
        "local_date",
        "local_time",
        "session",
        "status",
        "reason",
        "due_at",
        "sent_at",
        "attempts",
    ]
    list_filter = ["status", "skip_reason", "local_date"]
    search_fields = ["patient__user__email", "patient__user__full_name"]
    date_hierarchy = "local_date"
    list_per_page = 100
    fields = [
        "patient",
        "assignment",
        "local_date",
        "local_time",
        "timezone",
        "session",
        "due_at",
        "status",
        "skip_reason",
        "failure_reason",
        "attempts",
        "claimed_at",
        "sent_at",
        "message_id",
        "public_id",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return reminder_slots_for_staff(request.user)

    @admin.display(description=_("session"))
    def session(self, obj: ReminderSlot) -> str:
        return f"{obj.slot_number} of {obj.slots_in_day}"

    @admin.display(description=_("why"))
    def reason(self, obj: ReminderSlot) -> str:
        return obj.reason or "—"

    def has_module_permission(self, request) -> bool:
        return _may_see_patients(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return _may_see_patients(request)
