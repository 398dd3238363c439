"""Forms for the patient's own pages (the staff admin's forms live in forms.py)."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _

from accounts.forms import ThrottledSignInMixin
from patients.models import Patient


class SignInLinkForm(forms.Form):
    email = forms.EmailField(
        label=_("Your email address"),
        max_length=254,
        widget=forms.EmailInput(
            attrs={
                "autocomplete": "email",
                "inputmode": "email",
                "autocapitalize": "none",
                "spellcheck": "false",
            }
        ),
    )
    next = forms.CharField(required=False, widget=forms.HiddenInput)


class PasswordSignInForm(ThrottledSignInMixin, AuthenticationForm):
    """Django's sign-in form, labelled for patients: the username is the email.

    Throttled like the admin's: failures cool off password sign-in per account
    and per IP (the emailed link keeps working).
    """

    username = forms.EmailField(
        label=_("Your email address"),
        widget=forms.EmailInput(
            attrs={"autocomplete": "email", "inputmode": "email", "autocapitalize": "none"}
        ),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def timezone_choices() -> list[tuple[str, str]]:
    zones = sorted(
        zone
        for zone in zoneinfo.available_timezones()
        if "/" in zone and not zone.startswith(("Etc/", "SystemV/", "US/", "posix/", "right/"))
    )
    return [(zone, zone.replace("_", " ")) for zone in zones]


class PatientSettingsForm(forms.ModelForm):
    """Waking hours, time zone and reminders: saved through ``patient_update``."""

    timezone = forms.ChoiceField(label=_("Your time zone"), choices=timezone_choices)
    wake_time = forms.TimeField(
        label=_("I usually get up at"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    sleep_time = forms.TimeField(
        label=_("I usually go to bed at"),
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
    )
    reminders_enabled = forms.BooleanField(
        label=_("Send me reminder emails when a session is due"), required=False
    )
    reminders_paused_until = forms.DateField(
        label=_("Pause reminders until (optional)"),
        required=False,
        help_text=_("No reminders up to and including this date. Leave empty for no pause."),
        widget=forms.DateInput(
            attrs={"type": "date", "aria-describedby": "pause-help"}, format="%Y-%m-%d"
        ),
    )

    class Meta:
        model = Patient
        fields = [
            "wake_time",
            "sleep_time",
            "timezone",
            "reminders_enabled",
            "reminders_paused_until",
        ]

    def clean(self):
        cleaned = super().clean()
        wake, sleep = cleaned.get("wake_time"), cleaned.get("sleep_time")
        if wake and sleep and wake >= sleep:
            self.add_error("sleep_time", _("Bedtime must be later in the day than getting up."))
        return cleaned
