"""Library and templates in the admin.

Everyone on staff reads the library and the clinic-wide templates. A
therapist edits only their own copies ("Copy to my templates"); clinic admins
edit everything.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from accounts.admin_mixins import NotFoundOutsideScopeMixin
from accounts.models import is_clinic_admin
from programs.models import Exercise, PrescribedExercise, ProgramTemplate, TemplatePhase
from programs.phases import guideline_for
from programs.selectors import template_visible_to
from programs.services import template_copy


@admin.register(Exercise)
class ExerciseAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "position",
        "direction",
        "level",
        "default_reps",
        "default_hold_seconds",
    ]
    list_filter = ["direction", "position", "level"]
    search_fields = ["name", "slug"]
    readonly_fields = ["illustration", "steps_list"]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "illustration",
                    "name",
                    "slug",
                    "summary",
                    "position",
                    "direction",
                    "level",
                ]
            },
        ),
        (
            _("Doing it"),
            {
                "fields": [
                    "steps_list",
                    "steps",
                    "cues",
                    "common_mistakes",
                    "precautions",
                    "default_reps",
                    "default_hold_seconds",
                    "default_rest_seconds",
                ]
            },
        ),
        (_("Variants"), {"fields": ["easier_variant", "harder_variant", "sort_order"]}),
    ]

    @admin.display(description=_("illustration"))
    def illustration(self, obj: Exercise) -> str:
        if not obj.pk:
            return "—"
        return format_html('<img src="{}" alt="" width="240" height="160">', obj.illustration_url)

    @admin.display(description=_("steps as shown"))
    def steps_list(self, obj: Exercise) -> str:
        return format_html(
            "<ol>{}</ol>", format_html_join("", "<li>{}</li>", ((s,) for s in obj.steps))
        )


class OwnTemplateMixin:
    """Edit rights on templates: your own copies, or all for clinic admins."""

    def _template_of(self, obj):
        return obj

    def has_change_permission(self, request, obj=None) -> bool:
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or is_clinic_admin(request.user):
            return True
        return self._template_of(obj).owner_id == request.user.pk

    def has_delete_permission(self, request, obj=None) -> bool:
        if not super().has_delete_permission(request, obj):
            return False
        if obj is None or is_clinic_admin(request.user):
            return True
        return self._template_of(obj).owner_id == request.user.pk


class TemplatePhaseInline(admin.TabularInline):
    model = TemplatePhase
    extra = 0
    fields = ["phase", "default_sessions_per_day", "notes", "exercise_summary"]
    readonly_fields = ["exercise_summary"]
    show_change_link = True

    @admin.display(description=_("exercises"))
    def exercise_summary(self, obj: TemplatePhase) -> str:
        if not obj.pk:
            return "—"
        return format_html_join("", "<div>{}</div>", ((str(item),) for item in obj.exercises.all()))

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("exercises__exercise")


@admin.register(ProgramTemplate)
class ProgramTemplateAdmin(NotFoundOutsideScopeMixin, OwnTemplateMixin, admin.ModelAdmin):
    list_display = ["name", "bias", "owner", "is_builtin", "updated_at"]
    list_filter = ["bias", "is_builtin"]
    search_fields = ["name"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [TemplatePhaseInline]
    actions = ["copy_templates"]
    exclude = ["copied_from"]

    def get_queryset(self, request):
        return template_visible_to(request.user).select_related("owner")

    def get_readonly_fields(self, request, obj=None):
        if is_clinic_admin(request.user):
            return []
        return ["owner", "is_builtin"]

    def save_model(self, request, obj, form, change):
        if not change and not is_clinic_admin(request.user):
            obj.owner = request.user
            obj.is_builtin = False
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Copy to my templates"), permissions=["view"])
    def copy_templates(self, request, queryset):
        for template in queryset:
            copy = template_copy(template=template, owner=request.user)
            self.message_user(
                request,
                _("Copied “%(name)s”: edit the copy “%(copy)s”.")
                % {"name": template.name, "copy": copy.name},
                messages.SUCCESS,
            )


class PrescribedExerciseInline(admin.TabularInline):
    model = PrescribedExercise
    extra = 1
    fields = ["order", "exercise", "sets", "reps", "hold_seconds", "rest_seconds"]
    autocomplete_fields = ["exercise"]


@admin.register(TemplatePhase)
class TemplatePhaseAdmin(NotFoundOutsideScopeMixin, OwnTemplateMixin, admin.ModelAdmin):
    list_display = ["template", "phase", "default_sessions_per_day"]
    inlines = [PrescribedExerciseInline]
    readonly_fields = ["guideline"]

    def _template_of(self, obj):
        return obj.template

    def get_queryset(self, request):
        return TemplatePhase.objects.filter(
            template__in=template_visible_to(request.user)
        ).select_related("template")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "template" and not is_clinic_admin(request.user):
            kwargs["queryset"] = ProgramTemplate.objects.filter(owner=request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_module_permission(self, request) -> bool:
        return False  # reached from its template's page

    @admin.display(description=_("guideline"))
    def guideline(self, obj: TemplatePhase) -> str:
        if not obj.pk:
            return "—"
        g = guideline_for(obj.phase)
        return _("%(low)d-%(high)d sessions a day, %(reps)d reps, typically %(duration)s") % {
            "low": g.sessions_min,
            "high": g.sessions_max,
            "reps": g.reps_per_session,
            "duration": g.typical_duration,
        }
