"""Record staff reads and writes of patient records made through the admin."""

from __future__ import annotations

from audit.models import AuditAction
from audit.services import audit_record


class AuditedAdminMixin:
    """Put on a ModelAdmin whose objects belong to a patient.

    Subclasses say how to reach the patient with ``audit_patient(obj)``.
    Opening an object, listing (with the patients shown), adding, changing
    and deleting are recorded.
    """

    def audit_patient(self, obj):
        return getattr(obj, "patient", None)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            obj = (
                response.context_data.get("original") if hasattr(response, "context_data") else None
            )
            if obj is not None:
                audit_record(
                    request=request,
                    action=AuditAction.VIEW,
                    patient=self.audit_patient(obj),
                    obj=obj,
                )
        return response

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None) or {}
        changelist = context.get("cl")
        if changelist is not None and response.status_code == 200:
            shown = [self.audit_patient(obj) for obj in changelist.result_list]
            audit_record(
                request=request,
                action=AuditAction.LIST,
                detail={
                    "model": self.model._meta.label,
                    "patients": sorted({str(p.public_id) for p in shown if p is not None}),
                },
            )
        return response

    def log_addition(self, request, obj, message):
        audit_record(
            request=request, action=AuditAction.CREATE, patient=self.audit_patient(obj), obj=obj
        )
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        audit_record(
            request=request,
            action=AuditAction.CHANGE,
            patient=self.audit_patient(obj),
            obj=obj,
            detail={"message": message if isinstance(message, (str, list)) else str(message)},
        )
        return super().log_change(request, obj, message)

    def delete_model(self, request, obj):
        audit_record(
            request=request, action=AuditAction.DELETE, patient=self.audit_patient(obj), obj=obj
        )
        return super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit_record(
                request=request,
                action=AuditAction.DELETE,
                patient=self.audit_patient(obj),
                obj=obj,
            )
        return super().delete_queryset(request, queryset)
