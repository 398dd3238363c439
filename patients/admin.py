"""The clinic's admin for patients and their programs.

Every queryset, choice list, autocomplete and custom view goes through
``patients.selectors``: a therapist only ever sees their own patients; a
clinic admin sees everyone. Objects outside that scope 404.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Prefetch
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin_mixins import NotFoundOutsideScopeMixin, ReadOnlyAdminMixin
from accounts.models import is_clinic_admin
from audit.admin_mixins import AuditedAdminMixin
from audit.models import AuditAction
from audit.services import audit_record
from patients import services
from patients.forms import (
    AdjustProgramForm,
    AdvancePhaseForm,
    AssignProgramForm,
    PatientAddForm,
    PatientAdminForm,
    ReasonForm,
    therapist_choices,
)
from patients.models import Assignment, Patient, PhaseChange
from patients.screening import screening_concerns
from patients.selectors import (
    assignments_for_staff,
    patient_active_assignment,
    patient_get_for_staff,
    patient_history,
    patients_for_staff,
)
from programs.phases import guideline_for, next_phase
from programs.selectors import template_visible_to
from reminders.admin import ReminderSlotInline


def _form_errors_from(form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, errors in error.error_dict.items():
            target = field if field in form.fields else None
            for item in errors:
                form.add_error(target, item)
    else:
        for message in error.messages:
            form.add_error(None, message)


class DataRightsConfirmForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that this cannot be undone."),
        error_messages={"required": _("Tick the box to confirm.")},
    )


class PhaseChangeInline(ReadOnlyAdminMixin, admin.TabularInline):
    """The append-only history, shown read-only under an assignment."""

    model = PhaseChange
    extra = 0
    can_delete = False
    fields = [
        "changed_at",
        "kind",
        "from_phase",
        "to_phase",
        "to_sessions_per_day",
        "changed_by",
        "reason",
    ]
    readonly_fields = fields
    ordering = ["-changed_at", "-id"]


class ActiveProgramFilter(admin.SimpleListFilter):
    title = _("program")
    parameter_name = "program"

    def lookups(self, request, model_admin):
        return [("none", _("No active program")), ("active", _("On a program"))]

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.exclude(assignments__status=Assignment.Status.ACTIVE)
        if self.value() == "active":
            return queryset.filter(assignments__status=Assignment.Status.ACTIVE)
        return queryset


@admin.register(Patient)
class PatientAdmin(AuditedAdminMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    form = PatientAdminForm
    add_form = PatientAddForm
    list_display = [
        "name",
        "email",
        "program",
        "phase",
        "therapist",
        "reminders_enabled",
        "screening_flags",
    ]
    list_select_related = ["user", "therapist"]
    search_fields = ["user__email", "user__full_name"]
    list_filter = [ActiveProgramFilter, "reminders_enabled"]
    readonly_fields = ["program_overview", "screened_at", "reminder_consent_at", "account"]
    list_per_page = 50
    actions = ["patient_erase", "patient_anonymise"]
    inlines = [ReminderSlotInline]  # read-only: today's and tomorrow's reminder emails

    fieldsets = [
        (None, {"fields": ["account", "therapist", "program_overview"]}),
        (
            _("Screening"),
            {
                "description": _("Asked before assigning a program. Changes are time-stamped."),
                "fields": [
                    "is_pregnant",
                    "spinal_stenosis",
                    "spinal_arthritis_or_facet",
                    "red_flag_bladder",
                    "red_flag_bowel",
                    "red_flag_saddle_numbness",
                    "red_flag_leg_weakness",
                    "screened_at",
                ],
            },
        ),
        (
            _("Day and reminders"),
            {
                "fields": [
                    "timezone",
                    "wake_time",
                    "sleep_time",
                    "reminders_enabled",
                    "reminder_consent_at",
                    "reminders_paused_until",
                ],
            },
        ),
    ]
    add_fieldsets = [
        (
            None,
            {
                "description": _(
                    "The patient gets no password: they sign in with a link sent to "
                    "their email address."
                ),
                "fields": ["email", "full_name", "therapist"],
            },
        ),
        (
            _("Screening"),
            {
                "fields": [
                    "is_pregnant",
                    "spinal_stenosis",
                    "spinal_arthritis_or_facet",
                    "red_flag_bladder",
                    "red_flag_bowel",
                    "red_flag_saddle_numbness",
                    "red_flag_leg_weakness",
                ]
            },
        ),
        (
            _("Day and reminders"),
            {"fields": ["timezone", "wake_time", "sleep_time", "reminders_enabled"]},
        ),
    ]

    # --- scoping ---------------------------------------------------------------

    def get_queryset(self, request):
        active = Assignment.objects.filter(status=Assignment.Status.ACTIVE).select_related(
            "template"
        )
        return patients_for_staff(request.user).prefetch_related(
            Prefetch("assignments", queryset=active, to_attr="active_assignments")
        )

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        if is_clinic_admin(request.user):
            filters.insert(0, "therapist")
        return filters

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "therapist":
            kwargs["queryset"] = therapist_choices(request.user)
            if not is_clinic_admin(request.user):
                kwargs["initial"] = request.user.pk
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        return self.add_fieldsets if obj is None else self.fieldsets

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.readonly_fields

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_clinic_admin(request.user) and super().has_delete_permission(request, obj)

    # --- saving through services -----------------------------------------------

    def save_model(self, request, obj, form, change):
        if change:
            services.patient_update(patient=obj, changed_fields=form.changed_data)
            return
        data = form.cleaned_data
        screening = {field: data[field] for field in services.SCREENING_FIELDS}
        created = services.patient_create(
            email=data["email"],
            full_name=data["full_name"],
            therapist=data["therapist"],
            timezone_name=data["timezone"],
            wake_time=data["wake_time"],
            sleep_time=data["sleep_time"],
            reminders_enabled=data["reminders_enabled"],
            **screening,
        )
        obj.pk, obj.user, obj.public_id = created.pk, created.user, created.public_id
        obj._state.adding = False

    def response_add(self, request, obj, post_url_continue=None):
        self.message_user(
            request,
            _("Patient created. Next, assign a program below."),
            messages.SUCCESS,
        )
        return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[obj.pk]))

    # --- list columns -----------------------------------------------------------

    @admin.display(description=_("name"), ordering="user__full_name")
    def name(self, obj: Patient) -> str:
        return obj.user.full_name or "—"

    @admin.display(description=_("email"), ordering="user__email")
    def email(self, obj: Patient) -> str:
        return obj.user.email

    def _active(self, obj: Patient) -> Assignment | None:
        active = getattr(obj, "active_assignments", None)
        if active is None:
            return patient_active_assignment(obj)
        return active[0] if active else None

    @admin.display(description=_("program"))
    def program(self, obj: Patient) -> str:
        assignment = self._active(obj)
        return assignment.template.name if assignment else "—"

    @admin.display(description=_("phase"))
    def phase(self, obj: Patient) -> str:
        assignment = self._active(obj)
        if not assignment:
            return "—"
        return f"{assignment.get_current_phase_display()}, {assignment.sessions_per_day}/day"

    @admin.display(description=_("screening"))
    def screening_flags(self, obj: Patient) -> str:
        flags = []
        if obj.has_red_flags:
            flags.append(str(_("RED FLAGS")))
        if obj.is_pregnant:
            flags.append(str(_("pregnant")))
        if obj.spinal_stenosis != Patient.Stenosis.NONE:
            flags.append(str(_("stenosis")))
        if obj.spinal_arthritis_or_facet:
            flags.append(str(_("facet/arthritis")))
        return ", ".join(flags) or "—"

    @admin.display(description=_("account"))
    def account(self, obj: Patient) -> str:
        return format_html("{}<br>{}", obj.user.full_name, obj.user.email)

    @admin.display(description=_("program"))
    def program_overview(self, obj: Patient) -> str:
        assignment = patient_active_assignment(obj)
        context = {
            "patient": obj,
            "assignment": assignment,
            "guideline": guideline_for(assignment.current_phase) if assignment else None,
            "next_phase": next_phase(assignment.current_phase) if assignment else None,
            "history": patient_history(obj)[:50],
        }
        return render_to_string("admin/patients/_program_panel.html", context)

    # --- program actions ------------------------------------------------------

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/assign/", view(self.assign_view), name="patients_patient_assign"),
            path("<int:pk>/advance/", view(self.advance_view), name="patients_patient_advance"),
            path("<int:pk>/adjust/", view(self.adjust_view), name="patients_patient_adjust"),
            path("<int:pk>/end/", view(self.end_view), name="patients_patient_end"),
            *super().get_urls(),
        ]

    def audit_patient(self, obj: Patient) -> Patient:
        return obj

    def _patient_for_action(self, request: HttpRequest, pk: int) -> Patient:
        patient = patient_get_for_staff(request.user, pk)
        if not self.has_change_permission(request, patient):
            raise PermissionDenied
        if request.method == "GET":
            audit_record(request=request, action=AuditAction.VIEW, patient=patient, obj=patient)
        return patient

    def _done(self, request: HttpRequest, patient: Patient, what: str) -> HttpResponseRedirect:
        """After a successful program change: audit it and go back to the patient."""
        audit_record(
            request=request,
            action=AuditAction.CHANGE,
            patient=patient,
            obj=patient,
            detail={"program": what},
        )
        return self._back(patient)

    def _render_action(self, request, patient, form, title, submit, extra=None) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "patient": patient,
            "original": patient,
            "form": form,
            "title": title,
            "submit_label": submit,
            "assignment": patient_active_assignment(patient),
            **(extra or {}),
        }
        return render(request, "admin/patients/program_action.html", context)

    def _back(self, patient: Patient) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:patients_patient_change", args=[patient.pk]))

    def assign_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        patient = self._patient_for_action(request, pk)
        templates = template_visible_to(request.user)
        active = patient_active_assignment(patient)
        current = str(active.public_id) if active else ""
        form = AssignProgramForm(
            request.POST or None, templates=templates, initial={"current": current}
        )
        concerns = []
        if request.method == "POST" and form.is_valid() and form.cleaned_data["current"] != current:
            # Opened before the program last changed (or sent twice): change nothing.
            form.add_error(
                None,
                _(
                    "This patient's program changed after you opened this page, so nothing "
                    "was changed. Check the program below and try again if you still need to."
                ),
            )
            form.data = form.data.copy()
            form.data["current"] = current
        elif request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            concerns = screening_concerns(patient=patient, template=data["template"])
            try:
                services.assignment_create(
                    patient=patient,
                    template=data["template"],
                    assigned_by=request.user,
                    phase=data["phase"],
                    sessions_per_day=data["sessions_per_day"],
                    override_reason=data["override_reason"],
                )
            except ValidationError as error:
                _form_errors_from(form, error)
            else:
                for concern in concerns:
                    if not concern.blocking:
                        self.message_user(request, concern.message, messages.WARNING)
                self.message_user(
                    request,
                    _("%(template)s assigned to %(patient)s.")
                    % {"template": data["template"].name, "patient": patient},
                    messages.SUCCESS,
                )
                return self._done(request, patient, "assigned")
        return self._render_action(
            request,
            patient,
            form,
            _("Assign a program"),
            _("Assign program"),
            {"concerns": concerns},
        )

    def _active_or_back(self, request, patient):
        assignment = patient_active_assignment(patient)
        if assignment is None:
            self.message_user(request, _("This patient has no active program."), messages.ERROR)
        return assignment

    def advance_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        patient = self._patient_for_action(request, pk)
        assignment = self._active_or_back(request, patient)
        if assignment is None:
            return self._back(patient)
        target = next_phase(assignment.current_phase)
        form = AdvancePhaseForm(
            request.POST or None, initial={"from_phase": assignment.current_phase}
        )
        if request.method == "POST" and form.is_valid():
            try:
                services.assignment_advance_phase(
                    assignment=assignment,
                    changed_by=request.user,
                    reason=form.cleaned_data["reason"],
                    sessions_per_day=form.cleaned_data["sessions_per_day"],
                    from_phase=form.cleaned_data["from_phase"],
                )
            except ValidationError as error:
                _form_errors_from(form, error)
            else:
                self.message_user(request, _("Moved to the next phase."), messages.SUCCESS)
                return self._done(request, patient, "advanced")
        return self._render_action(
            request,
            patient,
            form,
            _("Advance to the next phase"),
            _("Advance phase"),
            {"target_phase": target, "target_guideline": guideline_for(target) if target else None},
        )

    def adjust_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        patient = self._patient_for_action(request, pk)
        assignment = self._active_or_back(request, patient)
        if assignment is None:
            return self._back(patient)
        form = AdjustProgramForm(
            request.POST or None,
            initial={
                "phase": assignment.current_phase,
                "sessions_per_day": assignment.sessions_per_day,
            },
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["phase"] == assignment.current_phase:
                    services.assignment_set_sessions_per_day(
                        assignment=assignment,
                        sessions_per_day=data["sessions_per_day"],
                        changed_by=request.user,
                        reason=data["reason"],
                    )
                else:
                    services.assignment_set_phase(
                        assignment=assignment,
                        phase=data["phase"],
                        sessions_per_day=data["sessions_per_day"],
                        changed_by=request.user,
                        reason=data["reason"],
                    )
            except ValidationError as error:
                _form_errors_from(form, error)
            else:
                self.message_user(request, _("Program updated."), messages.SUCCESS)
                return self._done(request, patient, "adjusted")
        return self._render_action(
            request, patient, form, _("Change phase or sessions per day"), _("Save change")
        )

    def end_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        patient = self._patient_for_action(request, pk)
        assignment = self._active_or_back(request, patient)
        if assignment is None:
            return self._back(patient)
        form = ReasonForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            services.assignment_end(
                assignment=assignment, ended_by=request.user, reason=form.cleaned_data["reason"]
            )
            self.message_user(request, _("Program ended."), messages.SUCCESS)
            return self._done(request, patient, "ended")
        return self._render_action(request, patient, form, _("End the program"), _("End program"))

    # --- data rights: erase or anonymise (clinic admins only, audited) ---------

    def has_data_rights_permission(self, request) -> bool:
        return is_clinic_admin(request.user)

    @admin.action(
        description=_("Erase the patient's account and all their data (asks first)"),
        permissions=["data_rights"],
    )
    def patient_erase(self, request, queryset):
        return self._data_rights_action(request, queryset, erase=True)

    @admin.action(
        description=_("Anonymise: keep de-identified clinical data (asks first)"),
        permissions=["data_rights"],
    )
    def patient_anonymise(self, request, queryset):
        return self._data_rights_action(request, queryset, erase=False)

    def _data_rights_action(self, request, queryset, *, erase: bool):
        action = "patient_erase" if erase else "patient_anonymise"
        form = DataRightsConfirmForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            done = 0
            for patient in queryset.select_related("user"):
                with transaction.atomic():
                    # Recorded first, in the same transaction: the row keeps the
                    # patient's public id after the patient is gone.
                    audit_record(
                        request=request,
                        action=AuditAction.DELETE if erase else AuditAction.CHANGE,
                        patient=patient,
                        obj=patient,
                        detail={"data_rights": "erased" if erase else "anonymised"},
                    )
                    if erase:
                        services.patient_erase(patient=patient)
                    else:
                        services.patient_anonymise(patient=patient, by=request.user)
                done += 1
            if erase:
                message = ngettext("%(count)d patient erased.", "%(count)d patients erased.", done)
            else:
                message = ngettext(
                    "%(count)d patient anonymised.", "%(count)d patients anonymised.", done
                )
            self.message_user(request, message % {"count": done}, messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Erase patients") if erase else _("Anonymise patients"),
            "erase": erase,
            "patients": queryset.select_related("user"),
            "form": form,
            "action": action,
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return render(request, "admin/patients/data_rights_confirm.html", context)


@admin.register(Assignment)
class AssignmentAdmin(AuditedAdminMixin, NotFoundOutsideScopeMixin, admin.ModelAdmin):
    list_display = [
        "patient",
        "template",
        "current_phase",
        "sessions_per_day",
        "phase_started_on",
        "status",
    ]
    list_filter = ["status", "current_phase", "template"]
    search_fields = ["patient__user__email", "patient__user__full_name"]
    autocomplete_fields = ["patient"]
    actions = ["advance_to_next_phase"]
    inlines = [PhaseChangeInline]
    readonly_fields = [
        "patient",
        "template",
        "status",
        "current_phase",
        "sessions_per_day",
        "phase_started_on",
        "started_on",
        "ended_on",
        "assigned_by",
        "safety_override_reason",
        "manage",
    ]
    fields = readonly_fields

    def get_queryset(self, request):
        return assignments_for_staff(request.user)

    def has_add_permission(self, request) -> bool:
        # Programs are assigned from the patient's page, where screening is shown.
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return is_clinic_admin(request.user) and super().has_delete_permission(request, obj)

    @admin.display(description=_("manage"))
    def manage(self, obj: Assignment) -> str:
        url = reverse("admin:patients_patient_change", args=[obj.patient_id])
        return format_html('<a href="{}">{}</a>', url, _("Open the patient's page to change it"))

    @admin.action(
        description=_("Advance to next phase (asks for a reason)"), permissions=["change"]
    )
    def advance_to_next_phase(self, request, queryset):
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            moved, problems = 0, []
            for assignment in queryset:
                try:
                    services.assignment_advance_phase(
                        assignment=assignment,
                        changed_by=request.user,
                        reason=form.cleaned_data["reason"],
                        from_phase=request.POST.get(f"from_phase_{assignment.pk}", ""),
                    )
                    moved += 1
                    audit_record(
                        request=request,
                        action=AuditAction.CHANGE,
                        patient=assignment.patient,
                        obj=assignment,
                        detail={"program": "advanced"},
                    )
                except ValidationError as error:
                    problems.append(f"{assignment.patient}: {' '.join(error.messages)}")
            if moved:
                self.message_user(
                    request,
                    _("%(count)d moved to the next phase.") % {"count": moved},
                    messages.SUCCESS,
                )
            for problem in problems:
                self.message_user(request, problem, messages.ERROR)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Advance to the next phase"),
            "assignments": queryset,
            "form": form,
            "action": "advance_to_next_phase",
            "selected": request.POST.getlist(admin.helpers.ACTION_CHECKBOX_NAME),
        }
        return render(request, "admin/patients/advance_confirm.html", context)
