"""Writes for patients and their programs. The only place that changes them."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from patients.models import Assignment, LoginLink, Patient, PhaseChange, SignInRequest
from patients.screening import Concern, screening_concerns
from patients.signals import schedule_changed
from programs.models import ProgramTemplate
from programs.phases import Phase, guideline_for, next_phase
from programs.services import default_sessions_for


class ScreeningRefusal(ValidationError):
    """Assigning this program is unsafe for this patient without an override."""

    def __init__(self, concerns: list[Concern]):
        self.concerns = concerns
        messages = [concern.message for concern in concerns if concern.blocking]
        messages.append(
            _("To assign it anyway, record your clinical reason in “Safety override reason”.")
        )
        super().__init__(messages, code="screening")


def validate_sessions_per_day(*, phase: str, sessions_per_day: int) -> None:
    guideline = guideline_for(phase)
    if not guideline.allows(sessions_per_day):
        raise ValidationError(
            {
                "sessions_per_day": _(
                    "%(phase)s phase: sessions per day must be between %(low)d and %(high)d "
                    "(you entered %(value)d)."
                )
                % {
                    "phase": Phase(phase).label,
                    "low": guideline.sessions_min,
                    "high": guideline.sessions_max,
                    "value": sessions_per_day,
                }
            },
            code="sessions_out_of_range",
        )


def _require_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Please give a reason; it is kept in the history.")})
    return reason


SCHEDULE_FIELDS = frozenset(
    {"timezone", "wake_time", "sleep_time", "reminders_enabled", "reminders_paused_until"}
)


def _announce_schedule_change(patient: Patient) -> None:
    """Tell listeners (the reminder planner) once this transaction commits."""
    transaction.on_commit(
        lambda: schedule_changed.send(sender=Patient, patient=patient), robust=True
    )


def patient_local_today(patient: Patient, now: dt.datetime | None = None) -> dt.date:
    """The patient's own calendar date, now (or at ``now``)."""
    return (now or timezone.now()).astimezone(patient.tzinfo).date()


@transaction.atomic
def patient_create(
    *,
    email: str,
    full_name: str,
    therapist: User,
    timezone_name: str = "Europe/London",
    wake_time: dt.time = dt.time(7, 0),
    sleep_time: dt.time = dt.time(21, 0),
    reminders_enabled: bool = False,
    **screening,
) -> Patient:
    """Create a patient account with no password; they sign in by email link."""
    email = User.objects.normalize_email(email).strip().lower()
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": _("An account with this email address already exists.")})
    user = User.objects.create_user(email=email, password=None, full_name=full_name.strip())
    patient = Patient(
        user=user,
        therapist=therapist,
        timezone=timezone_name,
        wake_time=wake_time,
        sleep_time=sleep_time,
        reminders_enabled=reminders_enabled,
        reminder_consent_at=timezone.now() if reminders_enabled else None,
        screened_at=timezone.now() if screening else None,
        **screening,
    )
    patient.full_clean(exclude=["user"])
    patient.save()
    transaction.on_commit(lambda: patient_send_welcome(patient=patient), robust=True)
    return patient


@transaction.atomic
def assignment_create(
    *,
    patient: Patient,
    template: ProgramTemplate,
    assigned_by: User,
    phase: str = Phase.ACUTE,
    sessions_per_day: int | None = None,
    override_reason: str = "",
    reason: str = "",
    start_date: dt.date | None = None,
) -> Assignment:
    """Put a patient on a program, ending any program they were on.

    Refused with ``ScreeningRefusal`` when the screening makes the program
    unsafe, unless ``override_reason`` records the therapist's reason.
    """
    if sessions_per_day is None:
        sessions_per_day = default_sessions_for(template, phase)
    validate_sessions_per_day(phase=phase, sessions_per_day=sessions_per_day)
    concerns = screening_concerns(patient=patient, template=template)
    override_reason = (override_reason or "").strip()
    if any(concern.blocking for concern in concerns) and not override_reason:
        raise ScreeningRefusal(concerns)
    if not any(concern.blocking for concern in concerns):
        override_reason = ""

    today = start_date or patient_local_today(patient)
    # Lock the patient row so two therapists assigning at once serialise here;
    # the partial unique constraint is the final guard. NO KEY: a session
    # being logged (its foreign key to the patient) need not wait for this.
    Patient.objects.select_for_update(no_key=True).get(pk=patient.pk)
    for previous in Assignment.objects.filter(patient=patient, status=Assignment.Status.ACTIVE):
        assignment_end(
            assignment=previous,
            ended_by=assigned_by,
            reason=_("Replaced by %(name)s") % {"name": template.name},
            end_date=today,
        )
    assignment = Assignment(
        patient=patient,
        template=template,
        current_phase=phase,
        sessions_per_day=sessions_per_day,
        phase_started_on=today,
        started_on=today,
        assigned_by=assigned_by,
        safety_override_reason=override_reason,
    )
    assignment.save()
    PhaseChange.objects.create(
        assignment=assignment,
        kind=PhaseChange.Kind.ASSIGNED,
        from_phase="",
        to_phase=phase,
        from_sessions_per_day=None,
        to_sessions_per_day=sessions_per_day,
        effective_on=today,
        changed_at=timezone.now(),
        changed_by=assigned_by,
        reason=(reason or "").strip()
        or (
            _("Assigned with safety override: %(why)s") % {"why": override_reason}
            if override_reason
            else _("Program assigned")
        ),
    )
    _announce_schedule_change(patient)
    return assignment


def _locked(assignment: Assignment) -> Assignment:
    locked = (
        Assignment.objects.select_for_update(no_key=True, of=("self",))
        .select_related("patient")
        .get(pk=assignment.pk)
    )
    if not locked.is_active:
        raise ValidationError(_("This program has ended; assign a new one instead."))
    return locked


def _record_change(
    *,
    assignment: Assignment,
    kind: str,
    to_phase: str,
    to_sessions: int,
    changed_by: User,
    reason: str,
) -> Assignment:
    today = patient_local_today(assignment.patient)
    from_phase, from_sessions = assignment.current_phase, assignment.sessions_per_day
    if to_phase != from_phase:
        assignment.phase_started_on = today
    assignment.current_phase = to_phase
    assignment.sessions_per_day = to_sessions
    assignment.save(
        update_fields=["current_phase", "sessions_per_day", "phase_started_on", "updated_at"]
    )
    PhaseChange.objects.create(
        assignment=assignment,
        kind=kind,
        from_phase=from_phase,
        to_phase=to_phase,
        from_sessions_per_day=from_sessions,
        to_sessions_per_day=to_sessions,
        effective_on=today,
        changed_at=timezone.now(),
        changed_by=changed_by,
        reason=reason,
    )
    _announce_schedule_change(assignment.patient)
    return assignment


@transaction.atomic
def assignment_advance_phase(
    *,
    assignment: Assignment,
    changed_by: User,
    reason: str,
    sessions_per_day: int | None = None,
    from_phase: str | None = None,
) -> Assignment:
    """Move to the next phase (acute → sub-acute → recovery → maintenance).

    ``from_phase`` is the phase the therapist saw; when the patient is no
    longer in it (a double submit), nothing changes.
    """
    reason = _require_reason(reason)
    assignment = _locked(assignment)
    if from_phase is not None and from_phase != assignment.current_phase:
        # A replayed or double-submitted form: the move already happened.
        raise ValidationError(
            _(
                "This patient is already in the %(phase)s phase; nothing was changed. "
                "(The form may have been sent twice.)"
            )
            % {"phase": Phase(assignment.current_phase).label},
            code="stale",
        )
    target = next_phase(assignment.current_phase)
    if target is None:
        raise ValidationError(_("Maintenance is the last phase; there is no next phase."))
    if sessions_per_day is None:
        sessions_per_day = default_sessions_for(assignment.template, target)
    validate_sessions_per_day(phase=target, sessions_per_day=sessions_per_day)
    return _record_change(
        assignment=assignment,
        kind=PhaseChange.Kind.ADVANCED,
        to_phase=target,
        to_sessions=sessions_per_day,
        changed_by=changed_by,
        reason=reason,
    )


@transaction.atomic
def assignment_set_phase(
    *,
    assignment: Assignment,
    phase: str,
    changed_by: User,
    reason: str,
    sessions_per_day: int | None = None,
) -> Assignment:
    """Move to any phase, for example back to acute after a flare-up."""
    reason = _require_reason(reason)
    assignment = _locked(assignment)
    if sessions_per_day is None:
        sessions_per_day = default_sessions_for(assignment.template, phase)
    validate_sessions_per_day(phase=phase, sessions_per_day=sessions_per_day)
    if phase == assignment.current_phase and sessions_per_day == assignment.sessions_per_day:
        raise ValidationError(_("The patient is already in this phase at this frequency."))
    return _record_change(
        assignment=assignment,
        kind=PhaseChange.Kind.PHASE_SET
        if phase != assignment.current_phase
        else PhaseChange.Kind.SESSIONS_SET,
        to_phase=phase,
        to_sessions=sessions_per_day,
        changed_by=changed_by,
        reason=reason,
    )


@transaction.atomic
def assignment_set_sessions_per_day(
    *, assignment: Assignment, sessions_per_day: int, changed_by: User, reason: str
) -> Assignment:
    reason = _require_reason(reason)
    assignment = _locked(assignment)
    validate_sessions_per_day(phase=assignment.current_phase, sessions_per_day=sessions_per_day)
    if sessions_per_day == assignment.sessions_per_day:
        raise ValidationError(
            {"sessions_per_day": _("That is already the patient's sessions per day.")}
        )
    return _record_change(
        assignment=assignment,
        kind=PhaseChange.Kind.SESSIONS_SET,
        to_phase=assignment.current_phase,
        to_sessions=sessions_per_day,
        changed_by=changed_by,
        reason=reason,
    )


@transaction.atomic
def assignment_end(
    *, assignment: Assignment, ended_by: User, reason: str, end_date: dt.date | None = None
) -> Assignment:
    reason = _require_reason(reason)
    assignment = _locked(assignment)
    today = end_date or patient_local_today(assignment.patient)
    assignment.status = Assignment.Status.ENDED
    assignment.ended_on = today
    assignment.save(update_fields=["status", "ended_on", "updated_at"])
    PhaseChange.objects.create(
        assignment=assignment,
        kind=PhaseChange.Kind.ENDED,
        from_phase=assignment.current_phase,
        to_phase=assignment.current_phase,
        from_sessions_per_day=assignment.sessions_per_day,
        to_sessions_per_day=assignment.sessions_per_day,
        effective_on=today,
        changed_at=timezone.now(),
        changed_by=ended_by,
        reason=reason,
    )
    _announce_schedule_change(assignment.patient)
    return assignment


SCREENING_FIELDS = (
    "is_pregnant",
    "spinal_stenosis",
    "spinal_arthritis_or_facet",
    "red_flag_bladder",
    "red_flag_bowel",
    "red_flag_saddle_numbness",
    "red_flag_leg_weakness",
)


@transaction.atomic
def patient_update(*, patient: Patient, changed_fields: list[str]) -> Patient:
    """Save profile edits made on ``patient``, stamping screening and consent times."""
    now = timezone.now()
    update_fields = set(changed_fields)
    if update_fields & set(SCREENING_FIELDS):
        patient.screened_at = now
        update_fields.add("screened_at")
    if "reminders_enabled" in update_fields:
        patient.reminder_consent_at = now if patient.reminders_enabled else None
        update_fields.add("reminder_consent_at")
    patient.full_clean(exclude=["user"])
    patient.save(update_fields=[*sorted(update_fields), "updated_at"])
    if update_fields & SCHEDULE_FIELDS:
        _announce_schedule_change(patient)
    return patient


# --- Sign-in links --------------------------------------------------------

LOGIN_LINK_LIFETIME = dt.timedelta(minutes=15)
# Rate limits for asking for a link, counted whether or not the address exists
# so that the answer never tells anyone who has an account.
SIGNIN_LIMIT_PER_EMAIL = 3
SIGNIN_LIMIT_PER_EMAIL_WINDOW = dt.timedelta(minutes=15)
SIGNIN_LIMIT_PER_IP = 20
SIGNIN_LIMIT_PER_IP_WINDOW = dt.timedelta(hours=1)


class SignInRateLimited(Exception):
    """Too many sign-in links asked for, from this address or this network."""


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _email_hash(email: str) -> str:
    return _sha256(User.objects.normalize_email(email).strip().lower())


def absolute_url(path: str) -> str:
    return f"{settings.SITE_URL}{path}"


@dataclass(frozen=True)
class IssuedLink:
    link: LoginLink
    token: str

    @property
    def url(self) -> str:
        return absolute_url(reverse("patients:signin_link", kwargs={"token": self.token}))


def login_link_create(
    *, user: User, requested_ip: str | None = None, next_url: str = ""
) -> IssuedLink:
    """A fresh single-use link for ``user``. The token itself is never stored."""
    token = secrets.token_urlsafe(32)
    now = timezone.now()
    link = LoginLink.objects.create(
        user=user,
        token_hash=_sha256(token),
        next_url=next_url[:500],
        created_at=now,
        expires_at=now + LOGIN_LINK_LIFETIME,
        requested_ip=requested_ip or None,
    )
    return IssuedLink(link=link, token=token)


def login_link_peek(*, token: str) -> LoginLink | None:
    """The unused, unexpired link for this token, without spending it."""
    return (
        LoginLink.objects.filter(
            token_hash=_sha256(token), used_at__isnull=True, expires_at__gt=timezone.now()
        )
        .select_related("user")
        .first()
    )


@transaction.atomic
def login_link_redeem(*, token: str) -> LoginLink | None:
    """Spend a link: it signs in exactly once, and only before it expires.

    The conditional UPDATE changes one row at most, so two clicks racing each
    other cannot both succeed.
    """
    now = timezone.now()
    spent = LoginLink.objects.filter(
        token_hash=_sha256(token), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if spent != 1:
        return None
    link = LoginLink.objects.select_related("user").get(token_hash=_sha256(token))
    if not link.user.is_active:
        return None
    return link


def _send_link_email(
    *, user: User, issued: IssuedLink, template: str, subject: str, extra: dict | None = None
) -> None:
    context = {
        "user": user,
        "link_url": issued.url,
        "signin_url": absolute_url(reverse("patients:signin")),
        "minutes": int(LOGIN_LINK_LIFETIME.total_seconds() // 60),
        **(extra or {}),
    }
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string(f"patients/email/{template}.txt", context),
        to=[user.email],
    )
    message.attach_alternative(
        render_to_string(f"patients/email/{template}.html", context), "text/html"
    )
    message.send()


@transaction.atomic
def login_link_request(*, email: str, ip: str | None, next_url: str = "") -> None:
    """Email a sign-in link to ``email`` if it belongs to an active account.

    Raises ``SignInRateLimited`` when this address or this IP asked too often.
    Otherwise behaves the same whether or not the address is known.
    """
    now = timezone.now()
    email_hash = _email_hash(email)
    recent_for_email = SignInRequest.objects.filter(
        email_hash=email_hash, created_at__gt=now - SIGNIN_LIMIT_PER_EMAIL_WINDOW
    ).count()
    recent_for_ip = (
        SignInRequest.objects.filter(ip=ip, created_at__gt=now - SIGNIN_LIMIT_PER_IP_WINDOW).count()
        if ip
        else 0
    )
    if recent_for_email >= SIGNIN_LIMIT_PER_EMAIL or recent_for_ip >= SIGNIN_LIMIT_PER_IP:
        raise SignInRateLimited
    SignInRequest.objects.create(email_hash=email_hash, ip=ip or None, created_at=now)
    # The ledger only needs the last hour or so; keep it small.
    SignInRequest.objects.filter(created_at__lt=now - dt.timedelta(days=1)).delete()
    user = User.objects.filter(email__iexact=email.strip(), is_active=True).first()
    if user is None:
        return
    issued = login_link_create(user=user, requested_ip=ip, next_url=next_url)
    transaction.on_commit(
        lambda: _send_link_email(
            user=user,
            issued=issued,
            template="signin_link",
            subject=_("Your sign-in link for Back Exercise Coach"),
        ),
        robust=True,
    )


def patient_send_welcome(*, patient: Patient) -> None:
    """The welcome email a new patient gets, with a sign-in link."""
    user = patient.user
    issued = login_link_create(user=user)
    _send_link_email(
        user=user,
        issued=issued,
        template="welcome",
        subject=_("Welcome to Back Exercise Coach"),
        extra={"therapist": patient.therapist},
    )


# --- Data rights: erase or anonymise a patient (clinic admins, audited by the caller) ---


def _forget_sign_in_traces(*, user: User) -> None:
    """Rate-limit ledgers keyed by the address, and the admin's change log naming them."""
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    from accounts.models import SignInFailure

    SignInFailure.objects.filter(email=user.email.lower()).delete()
    SignInRequest.objects.filter(email_hash=_email_hash(user.email)).delete()
    LoginLink.objects.filter(user=user).delete()
    patient = getattr(user, "patient", None)
    # Django's admin history stores each object's name ("object_repr").
    targets = [(User, [user.pk])]
    if patient is not None:
        targets += [
            (Patient, [patient.pk]),
            (Assignment, list(patient.assignments.values_list("pk", flat=True))),
        ]
    for model, pks in targets:
        LogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(model),
            object_id__in=[str(pk) for pk in pks],
        ).delete()


@transaction.atomic
def patient_erase(*, patient: Patient) -> str:
    """Delete the patient's account and every health record. Returns their public id.

    Gone: the account, profile, screening, programs and their history,
    sessions, pain and warning-sign reports, alerts, reminder emails, sign-in
    links and the sign-in ledgers. The audit trail keeps its rows: their
    ``patient`` / ``actor`` columns become empty and only the text copies
    (the patient's random public id, the actor's address) stay.
    """
    patient = Patient.objects.select_related("user").select_for_update().get(pk=patient.pk)
    public_id = str(patient.public_id)
    user = patient.user
    _forget_sign_in_traces(user=user)
    # Sessions first: they protect the programs they were logged under.
    from symptoms.models import SessionLog

    SessionLog.objects.filter(patient=patient).delete()
    # The user's deletion cascades to the patient and everything hanging off it.
    user.delete()
    return public_id


ANONYMISED_NAME = "Anonymised patient"
REDACTED = "[removed when the patient was anonymised]"


@transaction.atomic
def patient_anonymise(*, patient: Patient, by: User) -> Patient:
    """Keep de-identified clinical data for statistics; nothing that names the person.

    Kept: the screening answers, time zone and waking window, programs with
    their phases and dates, sessions, pain scores and locations, warning-sign
    reports and alert kinds. Replaced: name and email (random placeholder).
    Removed: free text (pain notes, alert messages, therapists' reasons),
    reminder emails, sign-in links and ledgers. The account cannot sign in.
    """
    from reminders.models import ReminderSlot
    from symptoms.models import Alert, PainReport

    patient = Patient.objects.select_related("user").select_for_update().get(pk=patient.pk)
    user = patient.user
    _forget_sign_in_traces(user=user)
    for assignment in patient.assignments.filter(status=Assignment.Status.ACTIVE):
        assignment_end(assignment=assignment, ended_by=by, reason=REDACTED)
    PhaseChange.objects.filter(assignment__patient=patient).update(reason=REDACTED)
    patient.assignments.exclude(safety_override_reason="").update(safety_override_reason=REDACTED)
    PainReport.objects.filter(patient=patient).update(note="")
    for kind, label in Alert.Kind.choices:
        Alert.objects.filter(patient=patient, kind=kind).update(message=str(label))
    ReminderSlot.objects.filter(patient=patient).delete()

    placeholder = secrets.token_hex(8)
    user.email = f"anonymised-{placeholder}@invalid.example"
    user.full_name = f"{ANONYMISED_NAME} {placeholder[:6]}"
    user.is_active = False
    user.set_unusable_password()  # also ends every signed-in session
    user.save()
    patient.reminders_enabled = False
    patient.reminder_consent_at = None
    patient.reminders_paused_until = None
    patient.save(
        update_fields=[
            "reminders_enabled",
            "reminder_consent_at",
            "reminders_paused_until",
            "updated_at",
        ]
    )
    _announce_schedule_change(patient)
    return patient
