"""Sign-in forms with password throttling, for the admin and the patient pages."""

from __future__ import annotations

import math

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.throttling import (
    sign_in_failure_record,
    sign_in_success_record,
    sign_in_throttle_state,
)


class ThrottledSignInMixin:
    """Refuse password sign-in during a cool-off; count failures; clear on success."""

    def clean(self):
        email = (self.data.get("username") or "").strip()
        ip = self.request.META.get("REMOTE_ADDR") if self.request else None
        state = sign_in_throttle_state(email=email, ip=ip)
        if state.blocked:
            minutes = max(1, math.ceil(state.retry_after.total_seconds() / 60))
            raise forms.ValidationError(
                ngettext(
                    "Too many failed sign-ins. Please wait %(minutes)d minute and try "
                    "again, or ask for a sign-in link by email.",
                    "Too many failed sign-ins. Please wait %(minutes)d minutes and try "
                    "again, or ask for a sign-in link by email.",
                    minutes,
                )
                % {"minutes": minutes},
                code="throttled",
            )
        try:
            cleaned = super().clean()
        except forms.ValidationError as error:
            if getattr(error, "code", None) == "invalid_login":
                sign_in_failure_record(email=email, ip=ip)
            raise
        sign_in_success_record(email=email)
        return cleaned


class ThrottledAuthenticationForm(ThrottledSignInMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledSignInMixin, AdminAuthenticationForm):
    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": _(
            "Please enter the correct email address and password for a staff account. "
            "Both fields may be case-sensitive."
        ),
    }
