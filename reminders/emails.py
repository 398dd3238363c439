"""The reminder email: text and HTML, one-tap log link, RFC 8058 unsubscribe.

Reminders go out in batches (reminders.services.reminder_send_batch), so the
cost of one email matters. Two things keep it low without changing what the
patient receives:

* **Bodies** come from the Django templates, rendered once per process for
  each distinct content (phase, exercises, session numbers, ...) with markers
  in place of the two per-patient strings (first name, unsubscribe link);
  each email then only fills those in, escaped exactly where the template
  escaped them (``_Skeleton``). Tests compare the result with a full render.
* **Bytes on the wire**: ``ReminderEmail.wire_bytes()`` writes the MIME
  message directly (two quoted-printable parts, the same headers Django's SMTP
  backend would send) instead of going through the ``email`` package, which
  costs milliseconds per message. Anything unusual (a non-ASCII header, an
  address that needs IDNA, another charset) falls back to Django's own
  serialisation.
"""

from __future__ import annotations

import binascii
import datetime as dt
import email.policy
import functools
import random
import re
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from email.utils import format_datetime
from html import escape as html_escape

from django.conf import settings
from django.core.mail import EmailMessage, EmailMultiAlternatives
from django.template.loader import render_to_string
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone, translation

from programs.models import PrescribedExercise
from programs.phases import Phase
from programs.selectors import template_phase_exercises
from reminders.models import ReminderSlot
from reminders.tokens import UnsubscribeTokenMaker, unsubscribe_token_make

TEXT_TEMPLATE = "reminders/email/reminder.txt"
HTML_TEMPLATE = "reminders/email/reminder.html"

# Headers whose value is a URL or an id: never folded into RFC 2047 encoded
# words (RFC 2047 section 5 forbids them there; receivers then ignore the
# header). Python's email package does that to any header longer than 78
# characters without a space, which a signed unsubscribe URL always is.
VERBATIM_HEADERS = ("List-Unsubscribe", "Message-ID")


class ReminderEmail(EmailMultiAlternatives):
    """An EmailMultiAlternatives whose URL and id headers go out on one line.

    RFC 5322 allows lines up to 998 characters; these stay far below that.
    """

    def message(self, *, policy=email.policy.default):
        msg = super().message(policy=policy.clone(refold_source="none"))
        for name in VERBATIM_HEADERS:
            value = msg[name]
            if value is not None:
                del msg[name]
                msg.set_raw(name, str(value))
        return msg

    def wire_bytes(self) -> bytes | None:
        """The message as Django's SMTP backend sends it, or None if unusual.

        Same headers and parts as ``message(policy=email.policy.SMTP)``
        (multipart/alternative, text then HTML, UTF-8, quoted-printable,
        CRLF line ends), built without the email package. None means: use
        ``message()`` instead (non-ASCII or over-long headers, another
        charset, attachments, several recipients).
        """
        return _wire_bytes(self)


# --- headers and links -------------------------------------------------------------


def message_id_for(slot: ReminderSlot) -> str:
    """The same for every attempt at this slot, so a repeat can be recognised."""
    return f"<reminder-{slot.public_id}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"


_TOKEN_PLACEHOLDER = "TOKEN0PLACEHOLDER"


@functools.lru_cache(maxsize=16)
def _links(site_url: str, urlconf, script_prefix: str) -> tuple[str, str, str]:
    """(log URL, unsubscribe URL before and after its token), reversed once."""
    unsubscribe = site_url + reverse("reminders:unsubscribe", args=[_TOKEN_PLACEHOLDER])
    before, after = unsubscribe.split(_TOKEN_PLACEHOLDER)
    log_url = f"{site_url}{reverse('patients:log_session')}?source=email"
    return log_url, before, after


def _current_links() -> tuple[str, str, str]:
    return _links(settings.SITE_URL, get_urlconf(), get_script_prefix())


def unsubscribe_url_for(slot: ReminderSlot) -> str:
    # Signed tokens are URL-safe (base64url and ":"), so the token goes in as
    # reverse() would put it (a test checks this).
    token = unsubscribe_token_make(patient_public_id=slot.patient.public_id)
    _log_url, before, after = _current_links()
    return f"{before}{token}{after}"


def log_url_for(slot: ReminderSlot | None = None) -> str:
    return _current_links()[0]


def _duration(seconds: int) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        minutes = seconds // 60
        return "1 minute" if minutes == 1 else f"{minutes} minutes"
    return "1 second" if seconds == 1 else f"{seconds} seconds"


def exercise_line(item: PrescribedExercise) -> str:
    """ "Propped on your elbows: 10 times, hold 10 seconds" in plain words."""
    times = "once" if item.reps == 1 else f"{item.reps} times"
    if item.sets > 1:
        times = f"{item.sets} sets of {times}"
    hold = f", hold {_duration(item.hold_seconds)}" if item.hold_seconds else ""
    return f"{item.exercise.name}: {times}{hold}"


def subject_for(slot: ReminderSlot) -> str:
    return f"Session {slot.slot_number} of {slot.slots_in_day} today: your back exercises"


def first_name_for(slot: ReminderSlot) -> str:
    user = slot.patient.user
    return user.get_short_name() if user.full_name else ""


# --- bodies: the templates, rendered once per distinct content ------------------------

# The per-patient strings are rendered as markers, then filled in per email.
# The "&" in a marker shows whether the template escaped the value there
# (it then reads "&amp;"): the value is escaped exactly where it would be.
_MARK_OPEN, _MARK_CLOSE = "\ue000", "\ue00f"
_FILLED = {"first_name": "\ue001", "unsubscribe_url": "\ue002"}
_FIELD_OF = {code: name for name, code in _FILLED.items()}
_MARKER = re.compile(f"{_MARK_OPEN}([{''.join(_FILLED.values())}])(&amp;|&){_MARK_CLOSE}")


def _marker(name: str) -> str:
    return f"{_MARK_OPEN}{_FILLED[name]}&{_MARK_CLOSE}"


class _Skeleton:
    """A rendered template cut at the markers: literal text and (field, escaped) slots."""

    __slots__ = ("parts",)

    def __init__(self, rendered: str):
        parts: list[str | tuple[str, bool]] = []
        position = 0
        for match in _MARKER.finditer(rendered):
            parts.append(rendered[position : match.start()])
            parts.append((_FIELD_OF[match.group(1)], match.group(2) == "&amp;"))
            position = match.end()
        parts.append(rendered[position:])
        if any(
            isinstance(part, str) and (_MARK_OPEN in part or _MARK_CLOSE in part) for part in parts
        ):
            # A filter changed a marker (|upper, |truncatechars, ...): the value
            # would not be treated the same way, so this content is rendered in full.
            raise ValueError("template transforms a per-patient value")
        self.parts = tuple(parts)

    def fill(self, values: dict[str, str]) -> str:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                name, escaped = part
                # What django.utils.html.escape() does, without its lazy-string wrapper.
                out.append(html_escape(values[name]) if escaped else values[name])
        return "".join(out)


@functools.lru_cache(maxsize=4096)
def _skeleton(template_name: str, shared: tuple, has_name: bool) -> _Skeleton | None:
    context = dict(shared)
    context["first_name"] = _marker("first_name") if has_name else ""
    context["unsubscribe_url"] = _marker("unsubscribe_url")
    try:
        return _Skeleton(render_to_string(template_name, context))
    except ValueError:
        return None


def _render(template_name: str, context: dict, key: tuple | None) -> str:
    skeleton = None
    if key is not None:
        skeleton = _skeleton(template_name, key, bool(context["first_name"]))
    if skeleton is None:
        return render_to_string(template_name, context)
    return skeleton.fill(
        {"first_name": context["first_name"], "unsubscribe_url": context["unsubscribe_url"]}
    )


def _skeleton_key(context: dict, language: str | None = None) -> tuple | None:
    """Everything the rendering may depend on but the two per-patient strings."""
    key = tuple(
        sorted(
            (name, value)
            for name, value in context.items()
            if name not in ("first_name", "unsubscribe_url")
        )
    )
    key += (("__language__", language or translation.get_language()),)
    try:
        hash(key)
    except TypeError:  # an unhashable value: render in full
        return None
    return key


def render_body(template_name: str, context: dict) -> str:
    """``render_to_string(template_name, context)``, from a cached skeleton when possible."""
    return _render(template_name, context, _skeleton_key(context))


def render_bodies(context: dict, language: str | None = None) -> tuple[str, str]:
    """The text and the HTML body for one reminder."""
    key = _skeleton_key(context, language)
    return _render(TEXT_TEMPLATE, context, key), _render(HTML_TEMPLATE, context, key)


@dataclass(frozen=True, slots=True)
class ReminderParts:
    """One reminder, composed: what its Django message and its wire bytes are made of."""

    to: str
    subject: str
    text: str
    html: str
    message_id: str
    unsubscribe_url: str


class ReminderComposer:
    """Composes the reminders of a batch; what they share is worked out once.

    ``compose()`` renders one reminder's parts; ``message()`` makes the Django
    message of them (for any mail backend) and ``wire_bytes()`` the bytes an
    SMTP connection sends (None when only ``message()`` will do).
    """

    def __init__(self):
        self.site_url = settings.SITE_URL
        self.log_url, self._unsubscribe_before, self._unsubscribe_after = _current_links()
        self.language = translation.get_language()
        self.from_email = settings.DEFAULT_FROM_EMAIL
        self.reply_to = (settings.REMINDER_REPLY_TO,) if settings.REMINDER_REPLY_TO else ()
        self._wire_fixed = _wire_fixed_lines(self.from_email, self.reply_to)
        self._tokens = UnsubscribeTokenMaker()
        self._phase_labels: dict[str, str] = {}
        self._date: tuple[int, bytes] = (-1, b"")

    def compose(
        self, *, slot: ReminderSlot, logged_today: int, exercise_lines: Iterable[str]
    ) -> ReminderParts:
        """``slot`` needs its patient and the patient's user."""
        patient = slot.patient
        token = self._tokens.make(patient_public_id=patient.public_id)
        unsubscribe_url = f"{self._unsubscribe_before}{token}{self._unsubscribe_after}"
        phase = slot.assignment.current_phase
        if phase not in self._phase_labels:
            self._phase_labels[phase] = str(Phase(phase).label)
        context = {
            "first_name": first_name_for(slot),
            "slot_number": slot.slot_number,
            "slots_in_day": slot.slots_in_day,
            "phase_label": self._phase_labels[phase],
            "exercises": tuple(exercise_lines),
            "logged_today": logged_today,
            "log_url": self.log_url,
            "unsubscribe_url": unsubscribe_url,
            "site_url": self.site_url,
        }
        text, html = render_bodies(context, self.language)
        return ReminderParts(
            to=patient.user.email,
            subject=subject_for(slot),
            text=text,
            html=html,
            message_id=message_id_for(slot),
            unsubscribe_url=unsubscribe_url,
        )

    def message(self, parts: ReminderParts) -> ReminderEmail:
        message = ReminderEmail(
            subject=parts.subject,
            body=parts.text,
            from_email=self.from_email,
            to=[parts.to],
            reply_to=list(self.reply_to) or None,
            headers=_extra_headers(parts),
        )
        message.attach_alternative(parts.html, "text/html")
        return message

    def wire_bytes(self, parts: ReminderParts) -> bytes | None:
        """What ``message(parts)`` is on the wire, built directly; None if unusual."""
        if self._wire_fixed is None or not SIMPLE_ADDRESS.fullmatch(parts.to):
            return None
        second = int(time.time())
        if self._date[0] != second:
            self._date = (second, _date_header())
        return _wire(
            self._wire_fixed,
            to=parts.to,
            subject=parts.subject,
            headers=_extra_headers(parts),
            text=parts.text,
            html=parts.html,
            date=self._date[1],
        )


def _extra_headers(parts: ReminderParts) -> dict[str, str]:
    return {
        "Message-ID": parts.message_id,
        "List-Unsubscribe": f"<{parts.unsubscribe_url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        # RFC 3834: sent by a machine; auto-responders should not answer.
        "Auto-Submitted": "auto-generated",
    }


def reminder_email_build(
    *, slot: ReminderSlot, logged_today: int, exercise_lines: Iterable[str] | None = None
) -> ReminderEmail:
    """The message for one slot. ``slot`` needs patient.user and assignment.

    ``exercise_lines`` are the lines of the slot's phase (a batch loads them
    once for all its slots); without them they are read here.
    """
    assignment = slot.assignment
    if exercise_lines is None:
        exercise_lines = [
            exercise_line(item)
            for item in template_phase_exercises(assignment.template, assignment.current_phase)
        ]
    composer = ReminderComposer()
    return composer.message(
        composer.compose(slot=slot, logged_today=logged_today, exercise_lines=exercise_lines)
    )


# --- bytes on the wire ---------------------------------------------------------------

# A plain ASCII addr-spec (dot-atom@domain): used as is on the envelope and in
# "To:". Anything else goes through Django's address parsing (IDNA, errors).
SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
)
_PRINTABLE_ASCII = re.compile(r"[ -~]*")
_HEADERS_SET_BY_US = {"from", "to", "cc", "reply-to", "date", "subject", "mime-version"}
_FOLD_AT = 78  # the email package folds longer header lines
_LONGEST_LINE = 998  # RFC 5322


@functools.lru_cache(maxsize=32)
def _address_header_lines(from_email: str, reply_to: tuple[str, ...]) -> tuple[bytes, bytes]:
    """ "From:" and "Reply-To:" exactly as the email package writes them, worked out once."""
    probe = EmailMessage(
        subject="", body="", from_email=from_email, to=["probe@example.invalid"], reply_to=reply_to
    )
    head = probe.message(policy=email.policy.SMTP).as_bytes().split(b"\r\n\r\n", 1)[0]
    fields = re.split(rb"\r\n(?![ \t])", head)

    def field(name: bytes) -> bytes:
        found = [line for line in fields if line[: len(name)].lower() == name]
        if len(found) != 1:
            raise ValueError(f"no single {name!r} header")
        return found[0] + b"\r\n"

    return field(b"from:"), field(b"reply-to:") if reply_to else b""


@functools.lru_cache(maxsize=256)
def _short_header(name: str, value: str) -> bytes | None:
    """A header the email package would not fold (Subject, the constant ones), cached."""
    return _header(name, value, _FOLD_AT)


def _header(name: str, value: str, limit: int) -> bytes | None:
    line = f"{name}: {value}"
    if len(line) > limit or not _PRINTABLE_ASCII.fullmatch(value):
        return None
    return line.encode("ascii") + b"\r\n"


def _quoted_printable(text: str) -> bytes:
    # Line ends normalised as the email package does, then CRLF throughout.
    lines = text.encode("utf-8").splitlines()
    return binascii.b2a_qp(b"\r\n".join(lines) + b"\r\n", istext=True)


_BOUNDARY_DIGITS = len(repr(sys.maxsize - 1))


def _boundary() -> bytes:
    # As the email package makes them. Quoted-printable bodies never contain
    # "==", so a boundary of "=" runs cannot collide with them.
    token = random.randrange(sys.maxsize)  # noqa: S311 (not security)
    return f"{'=' * 15}{token:0{_BOUNDARY_DIGITS}d}==".encode("ascii")


def _date_header() -> bytes:
    if getattr(settings, "EMAIL_USE_LOCALTIME", False):
        now = dt.datetime.now(timezone.get_current_timezone())
    else:
        now = dt.datetime.now(dt.UTC)
    return b"Date: " + format_datetime(now).encode("ascii") + b"\r\n"


def _wire_fixed_lines(from_email: str, reply_to: tuple[str, ...]) -> tuple[bytes, bytes] | None:
    """(From line, Reply-To line) for ``_wire``, or None if it cannot be used."""
    if settings.DEFAULT_CHARSET.lower() not in ("utf-8", "utf8"):
        return None
    try:
        return _address_header_lines(str(from_email), tuple(reply_to))
    except ValueError:
        return None


def _wire(
    fixed: tuple[bytes, bytes],
    *,
    to: str,
    subject: str,
    headers: dict[str, str],
    text: str,
    html: str,
    date: bytes | None = None,
) -> bytes | None:
    """The message bytes, headers in the order Django's message() writes them."""
    from_line, reply_to_line = fixed
    subject_line = _short_header("Subject", subject)
    if subject_line is None:
        return None
    boundary = _boundary()
    head = [
        b'MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary="',
        boundary,
        b'"\r\n',
        subject_line,
        from_line,
        b"To: " + to.encode("ascii") + b"\r\n",
        reply_to_line,
        date or _date_header(),
    ]
    for name, value in headers.items():
        if name not in VERBATIM_HEADERS:
            line = _short_header(name, value)
            if line is None:
                return None
            head.append(line)
    for name in VERBATIM_HEADERS:  # last, as ReminderEmail.message() puts them
        if name in headers:
            line = _header(name, headers[name], _LONGEST_LINE)
            if line is None:
                return None
            head.append(line)
    part_head = b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    return b"".join(
        [
            *head,
            b"\r\n--",
            boundary,
            b'\r\nContent-Type: text/plain; charset="utf-8"\r\n',
            part_head,
            _quoted_printable(text),
            b"\r\n--",
            boundary,
            b'\r\nContent-Type: text/html; charset="utf-8"\r\n',
            part_head,
            _quoted_printable(html),
            b"\r\n--",
            boundary,
            b"--\r\n",
        ]
    )


def _wire_bytes(message: EmailMultiAlternatives) -> bytes | None:
    charset = (message.encoding or settings.DEFAULT_CHARSET).lower()
    if (
        charset not in ("utf-8", "utf8")
        or message.attachments
        or message.cc
        or message.bcc
        or len(message.to) != 1
        or not SIMPLE_ADDRESS.fullmatch(message.to[0])
        or not message.body
        or len(message.alternatives) != 1
        or message.alternatives[0].mimetype != "text/html"
        or any(name.lower() in _HEADERS_SET_BY_US for name in message.extra_headers)
    ):
        return None
    fixed = _wire_fixed_lines(str(message.from_email), tuple(message.reply_to))
    if fixed is None:
        return None
    return _wire(
        fixed,
        to=message.to[0],
        subject=str(message.subject),
        headers={name: str(value) for name, value in message.extra_headers.items()},
        text=message.body,
        html=message.alternatives[0].content,
    )
