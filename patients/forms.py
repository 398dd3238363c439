"""Forms staff use in the admin to create patients and change their programs."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import THERAPISTS_GROUP, User, is_clinic_admin
from patients.models import Patient
from programs.models import ProgramTemplate
from programs.phases import GUIDELINES, Phase

TIMEZONE_CHOICES = [(name, name) for name in sorted(zoneinfo.available_timezones())]

SESSIONS_HELP = _(
    "Guideline: acute 6-10, sub-acute 4-6, recovery 3-4, maintenance 2-3 sessions a day. "
    "Leave empty for the program's default."
)


def therapist_choices(user: User):
    """Who a patient may be assigned to: yourself, or any therapist for clinic admins."""
    if is_clinic_admin(user):
        return User.objects.filter(is_staff=True, is_active=True, groups__name=THERAPISTS_GROUP)
    return User.objects.filter(pk=user.pk)


class PatientAdminForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=TIMEZONE_CHOICES, initial="Europe/London")

    class Meta:
        model = Patient
        fields = [
            "therapist",
            "timezone",
            "wake_time",
            "sleep_time",
            "reminders_enabled",
            "reminders_paused_until",
            "is_pregnant",
            "spinal_stenosis",
            "spinal_arthritis_or_facet",
            "red_flag_bladder",
            "red_flag_bowel",
            "red_flag_saddle_numbness",
            "red_flag_leg_weakness",
        ]


class PatientAddForm(PatientAdminForm):
    """Creating a patient needs no password: they sign in with an emailed link."""

    email = forms.EmailField(label=_("Email address"))
    full_name = forms.CharField(label=_("Full name"), max_length=150)

    class Meta(PatientAdminForm.Meta):
        fields = ["email", "full_name", *PatientAdminForm.Meta.fields]

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email address already exists."))
        return email


class AssignProgramForm(forms.Form):
    template = forms.ModelChoiceField(queryset=ProgramTemplate.objects.none(), label=_("Program"))
    phase = forms.ChoiceField(choices=Phase.choices, initial=Phase.ACUTE)
    sessions_per_day = forms.IntegerField(
        min_value=1, max_value=20, required=False, help_text=SESSIONS_HELP
    )
    override_reason = forms.CharField(
        label=_("Safety override reason"),
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text=_(
            "Only needed when the screening makes this program unsafe. Kept with the assignment."
        ),
    )

    # The active program when the form was opened ("" for none): assigning
    # twice from a replayed form must not end the program it just created.
    current = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, templates=None, **kwargs):
        super().__init__(*args, **kwargs)
        if templates is not None:
            self.fields["template"].queryset = templates


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=_("Kept in the phase history."),
    )


class AdvancePhaseForm(ReasonForm):
    sessions_per_day = forms.IntegerField(
        min_value=1, max_value=20, required=False, help_text=SESSIONS_HELP
    )
    # The phase shown when the form was opened: a replayed form changes nothing.
    from_phase = forms.ChoiceField(choices=Phase.choices, widget=forms.HiddenInput)


class AdjustProgramForm(ReasonForm):
    phase = forms.ChoiceField(choices=Phase.choices)
    sessions_per_day = forms.IntegerField(min_value=1, max_value=20, help_text=SESSIONS_HELP)

    def clean(self):
        cleaned = super().clean()
        phase, sessions = cleaned.get("phase"), cleaned.get("sessions_per_day")
        if phase and sessions is not None:
            guideline = GUIDELINES[Phase(phase)]
            if not guideline.allows(sessions):
                self.add_error(
                    "sessions_per_day",
                    _("%(phase)s phase: choose between %(low)d and %(high)d sessions a day.")
                    % {
                        "phase": Phase(phase).label,
                        "low": guideline.sessions_min,
                        "high": guideline.sessions_max,
                    },
                )
        return cleaned
