"""Every sign-in, failed sign-in and sign-out is recorded."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from audit.models import AuditAction
from audit.services import audit_record


@receiver(user_logged_in, dispatch_uid="audit_sign_in")
def _signed_in(sender, request, user, **kwargs) -> None:
    audit_record(
        request=request,
        action=AuditAction.SIGN_IN,
        actor=user,
        patient=getattr(user, "patient", None) if not user.is_staff else None,
        detail={"backend": getattr(user, "backend", "")},
    )


@receiver(user_logged_out, dispatch_uid="audit_sign_out")
def _signed_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(request=request, action=AuditAction.SIGN_OUT, actor=user)


@receiver(user_login_failed, dispatch_uid="audit_sign_in_failed")
def _sign_in_failed(sender, credentials, request=None, **kwargs) -> None:
    # Django passes credentials with the password already masked.
    attempted = str(credentials.get("username") or credentials.get("email") or "")[:254]
    audit_record(
        request=request,
        action=AuditAction.SIGN_IN_FAILED,
        actor_email=attempted,
        detail={"attempted": attempted},
    )
