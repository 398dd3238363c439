"""Forms the patient fills in: logging a session, the pain after it, warning signs."""

from __future__ import annotations

import uuid

from django import forms
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from symptoms.models import PainLocation, SessionSource

PAIN_WORDS = {
    0: pgettext_lazy("pain score", "No pain"),
    1: pgettext_lazy("pain score", "Very mild"),
    2: pgettext_lazy("pain score", "Mild"),
    3: pgettext_lazy("pain score", "Mild"),
    4: pgettext_lazy("pain score", "Moderate"),
    5: pgettext_lazy("pain score", "Moderate"),
    6: pgettext_lazy("pain score", "Quite bad"),
    7: pgettext_lazy("pain score", "Bad"),
    8: pgettext_lazy("pain score", "Very bad"),
    9: pgettext_lazy("pain score", "Severe"),
    10: pgettext_lazy("pain score", "Worst possible"),
}

LOCATION_HINTS = {
    PainLocation.NONE: _("I have no pain right now."),
    PainLocation.BACK_CENTRE: _("Only in the middle of my lower back."),
    PainLocation.BACK_SIDE: _("On one side of my lower back."),
    PainLocation.BUTTOCK: _("It reaches my buttock."),
    PainLocation.THIGH: _("It reaches my thigh, above the knee."),
    PainLocation.BELOW_KNEE: _("It reaches below my knee or into my foot."),
}


class SessionLogForm(forms.Form):
    """The one-tap "I did this session" form. The key makes a replay harmless."""

    idempotency_key = forms.UUIDField(widget=forms.HiddenInput)
    source = forms.ChoiceField(
        choices=SessionSource.choices, required=False, widget=forms.HiddenInput
    )
    # The patient's time zone when the form was made: with it the tap can be
    # logged in one statement (symptoms.services.session_log_signed_in), which
    # checks it is still theirs. Without it, or if it changed, the log takes
    # the usual way; it never decides anything by itself.
    zone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)


_SOURCES_OR_NONE = frozenset((*SessionSource.values, ""))


def session_log_values(data) -> tuple[uuid.UUID, str] | None:
    """What ``SessionLogForm(data)`` cleans to, (key, source), without building the form.

    The log POST is the request patients send most, and building a form costs
    more than the rest of the view. None when the input is not plainly valid:
    the form then decides, and says what is wrong.
    """
    source = data.get("source") or ""
    key = data.get("idempotency_key")
    if source not in _SOURCES_OR_NONE or not isinstance(key, str):
        return None
    try:
        return uuid.UUID(key.strip()), source
    except ValueError:
        return None


class PainForm(forms.Form):
    score = forms.TypedChoiceField(
        label=_("1. How bad is the pain, from 0 to 10?"),
        coerce=int,
        choices=list(PAIN_WORDS.items()),
        widget=forms.RadioSelect,
        error_messages={"required": _("Please tap a number from 0 to 10.")},
    )
    location = forms.ChoiceField(
        label=_("2. How far does the pain reach?"),
        choices=PainLocation.choices,
        widget=forms.RadioSelect,
        error_messages={"required": _("Please tap where your pain reaches.")},
    )
    note = forms.CharField(
        label=_("Anything else to tell your therapist? (optional)"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off"}),
    )


class RedFlagForm(forms.Form):
    bladder = forms.BooleanField(
        label=_("I cannot control my bladder (I leak urine or cannot pee)"), required=False
    )
    bowel = forms.BooleanField(label=_("I cannot control my bowels"), required=False)
    saddle_numbness = forms.BooleanField(
        label=_("Numbness around my groin, genitals or bottom (the area a saddle touches)"),
        required=False,
    )
    leg_weakness = forms.BooleanField(
        label=_("Severe weakness in one or both legs"), required=False
    )

    def clean(self):
        cleaned = super().clean()
        if not any(cleaned.get(name) for name in self.fields):
            raise forms.ValidationError(
                _("Tick each sign you have. If you have none of them, you can go back."),
                code="none",
            )
        return cleaned
