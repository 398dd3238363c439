"""Who may open what: every URL in config.urls, for six people.

The walk collects every URL pattern of ``config.urls`` (recursively: the
patient pages, the staff pages, the reminder links, and every admin URL,
model by model). Each must have an entry in ``TABLE`` saying what each
persona gets: the owner's patient and therapist, another patient, another
therapist, a clinic admin, and someone signed out. A URL without an entry
fails ``test_url_access`` with its name; an entry whose URL is gone fails
``test_table_has_no_stale_entries``.

The admin rows come from ``ADMIN_MODELS``, one line per registered model:
register a new ModelAdmin and its URLs fail here until it has a line.

Outcomes: a status code, ``SIGNIN`` (the patient sign-in page, with
``next``), ``ADMIN_LOGIN`` (the admin login, with ``next``), ``TO_*`` (a
redirect to that page) or ``REDIRECT`` (any other redirect). On top of the
status, nothing another patient or another therapist is shown may contain
the owner patient's name or email address.

The objects are built once per module (a transaction rolled back at the
end); each test runs in its own savepoint.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from django.contrib import admin
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.urls import URLResolver, get_resolver, reverse

ANON, PATIENT, OTHER_PATIENT = "anonymous", "patient", "other_patient"
THERAPIST, OTHER_THERAPIST, CLINIC_ADMIN = "therapist", "other_therapist", "clinic_admin"
PERSONAS = (ANON, PATIENT, OTHER_PATIENT, THERAPIST, OTHER_THERAPIST, CLINIC_ADMIN)

SIGNIN, ADMIN_LOGIN, REDIRECT = "sign-in page", "admin login", "redirect"
TO_TODAY, TO_ADMIN, TO_STAFF, TO_SIGNIN = "to /today/", "to /admin/", "to /staff/", "to /signin/"
KNOWN_TARGETS = {"/today/": TO_TODAY, "/admin/": TO_ADMIN, "/staff/": TO_STAFF}
KNOWN_TARGETS["/signin/"] = TO_SIGNIN

# Every test runs in a savepoint inside the module's world (see ``world``).
pytestmark = pytest.mark.django_db

# The owner patient's name and address: never shown to another patient or therapist.
OWNER_EMAIL, OWNER_NAME = "pat.owner@patients.test", "Pat Ownerly"


def everyone(outcome) -> dict:
    return dict.fromkeys(PERSONAS, outcome)


def people(anon, patient, other_patient, staff_or_therapist, other_therapist=None, admin_=None):
    """Outcomes in PERSONAS order; one value for all three staff if only one is given."""
    other_therapist = staff_or_therapist if other_therapist is None else other_therapist
    admin_ = staff_or_therapist if admin_ is None else admin_
    values = (anon, patient, other_patient, staff_or_therapist, other_therapist, admin_)
    return dict(zip(PERSONAS, values, strict=True))


def admin_only(therapist, other_therapist, clinic_admin) -> dict:
    """Admin URLs: anyone not on staff is sent to the admin login."""
    return people(ADMIN_LOGIN, ADMIN_LOGIN, ADMIN_LOGIN, therapist, other_therapist, clinic_admin)


# Patient pages: the signed-out sign in, staff are sent to the admin.
PATIENT_PAGE = people(SIGNIN, 200, 200, TO_ADMIN)
PATIENT_OBJECT = people(SIGNIN, 200, 404, TO_ADMIN)
# Staff pages (/staff/): signed-out to the admin login, patients 404.
STAFF_PAGE = people(ADMIN_LOGIN, 404, 404, 200)
STAFF_OBJECT = people(ADMIN_LOGIN, 404, 404, 200, 404, 200)


@dataclass
class Case:
    url: Callable[[SimpleNamespace], str]
    expect: dict
    method: str = "GET"
    data: dict = field(default_factory=dict)
    # The page is opened by a key in the URL (an emailed link): it may name its owner.
    link_key: bool = False


def patient_url(name: str, attr: str | None = None) -> Callable:
    def build(w):
        return reverse(name, args=[getattr(w, attr).public_id] if attr else [])

    return build


TABLE: dict[str, list[Case]] = {
    "healthz": [Case(lambda w: "/healthz", everyone(200))],
    # --- patient pages -------------------------------------------------------------------
    "patients:home": [Case(lambda w: "/", people(200, TO_TODAY, TO_TODAY, 200))],
    "patients:manifest": [Case(patient_url("patients:manifest"), everyone(200))],
    "patients:signin": [Case(patient_url("patients:signin"), people(200, TO_TODAY, TO_TODAY, 200))],
    "patients:signin_sent": [Case(patient_url("patients:signin_sent"), everyone(200))],
    "patients:signin_password": [
        Case(patient_url("patients:signin_password"), people(200, TO_TODAY, TO_TODAY, TO_ADMIN))
    ],
    "patients:signin_link": [
        # GET only shows a button (mail scanners open links); the token is the key.
        Case(
            lambda w: reverse("patients:signin_link", args=[w.link_token]),
            everyone(200),
            link_key=True,
        ),
        Case(lambda w: reverse("patients:signin_link", args=["x" * 43]), everyone(410)),
    ],
    "patients:signout": [
        Case(patient_url("patients:signout"), everyone(405)),
        Case(patient_url("patients:signout"), everyone(TO_SIGNIN), method="POST"),
    ],
    "patients:today": [Case(patient_url("patients:today"), PATIENT_PAGE)],
    "patients:guided": [Case(patient_url("patients:guided"), PATIENT_PAGE)],
    "patients:log_session": [Case(patient_url("patients:log_session"), PATIENT_PAGE)],
    "patients:log_pain": [
        Case(patient_url("patients:log_pain", "unscored_session"), PATIENT_OBJECT),
        # An empty form: the owner gets it back with a message (400), nobody else sees it.
        Case(
            patient_url("patients:log_pain", "unscored_session"),
            people(SIGNIN, 400, 404, TO_ADMIN),
            "POST",
        ),
    ],
    "patients:session_result": [
        Case(patient_url("patients:session_result", "session"), PATIENT_OBJECT)
    ],
    "patients:warning_signs": [Case(patient_url("patients:warning_signs"), PATIENT_PAGE)],
    "patients:warning_result": [
        Case(patient_url("patients:warning_result", "red_flag"), PATIENT_OBJECT)
    ],
    "patients:progress": [Case(patient_url("patients:progress"), PATIENT_PAGE)],
    "patients:settings": [Case(patient_url("patients:settings"), PATIENT_PAGE)],
    "patients:export_json": [Case(patient_url("patients:export_json"), PATIENT_PAGE)],
    "patients:export_csv": [Case(patient_url("patients:export_csv"), PATIENT_PAGE)],
    # --- links in reminder emails ----------------------------------------------------------
    "reminders:unsubscribe": [
        Case(
            lambda w: reverse("reminders:unsubscribe", args=[w.unsubscribe_token]),
            everyone(200),
            link_key=True,
        ),
        Case(lambda w: reverse("reminders:unsubscribe", args=["forged:token"]), everyone(400)),
    ],
    # --- staff pages -----------------------------------------------------------------------
    "staff:review": [Case(lambda w: reverse("staff:review"), STAFF_PAGE)],
    "staff:patient": [
        Case(lambda w: reverse("staff:patient", args=[w.patient.public_id]), STAFF_OBJECT)
    ],
    "staff:alert_acknowledge": [
        Case(lambda w: reverse("staff:alert_acknowledge", args=[w.alert.pk]), everyone(405)),
        Case(
            lambda w: reverse("staff:alert_acknowledge", args=[w.alert.pk]),
            people(ADMIN_LOGIN, 404, 404, TO_STAFF, 404, TO_STAFF),
            method="POST",
        ),
    ],
    "staff:export": [Case(lambda w: reverse("staff:export"), STAFF_PAGE)],
    # --- the admin site --------------------------------------------------------------------
    "admin:index": [Case(lambda w: reverse("admin:index"), admin_only(200, 200, 200))],
    "admin:login": [Case(lambda w: reverse("admin:login"), people(200, 200, 200, TO_ADMIN))],
    "admin:logout": [
        Case(lambda w: reverse("admin:logout"), people(TO_ADMIN, TO_ADMIN, TO_ADMIN, 405)),
        Case(lambda w: reverse("admin:logout"), people(TO_ADMIN, TO_ADMIN, TO_ADMIN, 200), "POST"),
    ],
    "admin:password_change": [
        Case(lambda w: reverse("admin:password_change"), admin_only(200, 200, 200))
    ],
    "admin:password_change_done": [
        Case(lambda w: reverse("admin:password_change_done"), admin_only(200, 200, 200))
    ],
    "admin:jsi18n": [Case(lambda w: reverse("admin:jsi18n"), admin_only(200, 200, 200))],
    "admin:autocomplete": [
        # The patient picker on a program: each therapist finds only their own patients.
        Case(
            lambda w: (
                reverse("admin:autocomplete")
                + "?app_label=patients&model_name=assignment&field_name=patient&term=pat"
            ),
            admin_only(200, 200, 200),
        ),
        Case(
            lambda w: (
                reverse("admin:autocomplete")
                + "?app_label=programs&model_name=prescribedexercise&field_name=exercise&term=press"
            ),
            admin_only(200, 200, 200),
        ),
        Case(lambda w: reverse("admin:autocomplete"), admin_only(403, 403, 403)),
    ],
    "admin:view_on_site": [
        Case(
            lambda w: reverse("admin:view_on_site", args=[w.patient_ct, w.patient.pk]),
            admin_only(404, 404, 404),
        )
    ],
    "admin:app_list": [
        Case(lambda w: reverse("admin:app_list", args=["patients"]), admin_only(200, 200, 200)),
        Case(lambda w: reverse("admin:app_list", args=["symptoms"]), admin_only(200, 200, 200)),
        Case(lambda w: reverse("admin:app_list", args=["programs"]), admin_only(200, 200, 200)),
        Case(lambda w: reverse("admin:app_list", args=["reminders"]), admin_only(200, 200, 200)),
        Case(lambda w: reverse("admin:app_list", args=["accounts"]), admin_only(404, 404, 200)),
        Case(lambda w: reverse("admin:app_list", args=["auth"]), admin_only(404, 404, 404)),
        Case(lambda w: reverse("admin:app_list", args=["audit"]), admin_only(404, 404, 200)),
    ],
    "admin/(?P<url>.*)$": [
        Case(lambda w: "/admin/no-such-page/", admin_only(404, 404, 404)),
        # Without its slash, an object's URL redirects to the slashed one (which scopes).
        Case(
            lambda w: "/admin/patients/patient/no-slash",
            admin_only(REDIRECT, REDIRECT, REDIRECT),
        ),
    ],
    "admin:auth_user_password_change": [
        Case(
            lambda w: reverse("admin:auth_user_password_change", args=[w.therapist.pk]),
            admin_only(403, 403, 200),
        )
    ],
    # The patient's program pages (custom admin views).
    **{
        f"admin:patients_patient_{action}": [
            Case(
                lambda w, action=action: reverse(
                    f"admin:patients_patient_{action}", args=[w.patient.pk]
                ),
                admin_only(200, 404, 200),
            )
        ]
        for action in ("assign", "advance", "adjust", "end")
    },
}

# Every registered model: the object used (the owner's), then per admin view the
# outcome for (therapist, other therapist, clinic admin).
READ_ONLY_RECORD = {
    "changelist": (200, 200, 200),
    "add": (403, 403, 403),
    "change": (200, 404, 200),
    "delete": (403, 404, 403),
    "history": (200, 404, 200),
}
ADMIN_MODELS: dict[str, tuple[str, dict]] = {
    "auth.group": (
        "group",
        dict.fromkeys(["changelist", "add", "change", "delete", "history"], (403, 403, 403)),
    ),
    "accounts.user": (
        "therapist",
        {
            "changelist": (403, 403, 200),
            "add": (403, 403, 200),
            "change": (403, 403, 200),
            "delete": (403, 403, 403),  # superusers only
            "history": (403, 403, 200),
        },
    ),
    "programs.exercise": (
        "exercise",  # the shared library: every staff member reads it
        {
            "changelist": (200, 200, 200),
            "add": (403, 403, 200),
            "change": (200, 200, 200),
            "delete": (403, 403, 403),  # library exercises are never deleted
            "history": (200, 200, 200),
        },
    ),
    "programs.programtemplate": (
        "own_template",  # the therapist's own copy
        {
            "changelist": (200, 200, 200),
            "add": (200, 200, 200),
            "change": (200, 404, 200),
            "delete": (200, 404, 200),
            "history": (200, 404, 200),
        },
    ),
    "programs.templatephase": (
        "own_template_phase",
        {
            "changelist": (200, 200, 200),
            "add": (200, 200, 200),
            "change": (200, 404, 200),
            "delete": (200, 404, 200),
            "history": (200, 404, 200),
        },
    ),
    "patients.patient": (
        "patient",
        {
            "changelist": (200, 200, 200),
            "add": (200, 200, 200),
            "change": (200, 404, 200),
            "delete": (403, 404, 200),  # clinic admins only
            "history": (200, 404, 200),
        },
    ),
    "patients.assignment": (
        "assignment",
        {
            "changelist": (200, 200, 200),
            "add": (403, 403, 403),  # assigned from the patient's page
            "change": (200, 404, 200),
            "delete": (403, 404, 200),
            "history": (200, 404, 200),
        },
    ),
    "reminders.reminderslot": ("reminder_slot", READ_ONLY_RECORD),
    "symptoms.sessionlog": ("session", READ_ONLY_RECORD),
    "symptoms.painreport": ("pain_report", READ_ONLY_RECORD),
    "symptoms.redflagreport": ("red_flag", READ_ONLY_RECORD),
    "symptoms.alert": ("alert", READ_ONLY_RECORD),
    "audit.auditevent": (
        "audit_event",  # clinic admins read it; nobody adds, changes or deletes
        {
            "changelist": (403, 403, 200),
            "add": (403, 403, 403),
            "change": (403, 403, 200),
            "delete": (403, 403, 403),
            "history": (403, 403, 200),
        },
    ),
}


def _admin_model_cases() -> dict[str, list[Case]]:
    cases: dict[str, list[Case]] = {}
    for label, (attr, views) in ADMIN_MODELS.items():
        app_label, model_name = label.split(".")
        prefix = f"admin:{app_label}_{model_name}"
        for view, outcome in views.items():
            name = f"{prefix}_{view}"
            takes_object = view not in {"changelist", "add"}

            def url(w, name=name, attr=attr, takes_object=takes_object):
                return reverse(name, args=[getattr(w, attr).pk] if takes_object else [])

            cases[f"{prefix}_{view}"] = [Case(url, admin_only(*outcome))]
        # /admin/<app>/<model>/<id>/ redirects staff to the change page (which scopes).
        cases[f"admin/{app_label}/{model_name}/<path:object_id>/"] = [
            Case(
                lambda w, a=attr, p=f"/admin/{app_label}/{model_name}/": f"{p}{getattr(w, a).pk}/",
                admin_only(REDIRECT, REDIRECT, REDIRECT),
            )
        ]
    return cases


TABLE.update(_admin_model_cases())


# --- walking the URLconf -------------------------------------------------------------------


def url_patterns() -> dict[str, str]:
    """{key: route}; the key is the namespaced name, or the route if it has no name."""
    found: dict[str, str] = {}

    def walk(patterns, prefix: str, namespace: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                inner = pattern.namespace
                joined = f"{namespace}:{inner}" if namespace and inner else inner or namespace
                walk(pattern.url_patterns, route, joined or "")
            else:
                name = pattern.name
                key = (f"{namespace}:{name}" if namespace else name) if name else route
                found[key] = route

    walk(get_resolver("config.urls").url_patterns, "", "")
    return found


PATTERNS = url_patterns()


def test_the_walk_sees_the_admin_models_and_every_app():
    registered = {model._meta.label_lower for model in admin.site._registry}
    unlisted = registered - set(ADMIN_MODELS)
    assert not unlisted, f"Admin models without a line in ADMIN_MODELS: {sorted(unlisted)}"
    assert set(ADMIN_MODELS) <= registered, "ADMIN_MODELS lists a model the admin lost"
    assert any(key.startswith("patients:") for key in PATTERNS)
    assert any(key.startswith("staff:") for key in PATTERNS)
    assert "admin:patients_patient_change" in PATTERNS


def test_table_has_no_stale_entries():
    stale = set(TABLE) - set(PATTERNS)
    assert not stale, f"TABLE entries for URLs that no longer exist: {sorted(stale)}"


# --- the world: the owner's objects and the six personas -----------------------------------


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock(), transaction.atomic():
        yield _build_world()
        transaction.set_rollback(True)


def _build_world() -> SimpleNamespace:
    import uuid

    from django.contrib.auth.models import Group

    from audit.models import AuditAction
    from audit.services import audit_record
    from patients import services as patient_services
    from patients.models import Patient
    from programs.models import Exercise, ProgramTemplate
    from programs.services import template_copy
    from reminders.models import ReminderSlot
    from reminders.services import reminder_plan_patient
    from reminders.tokens import unsubscribe_token_make
    from symptoms import services as symptom_services
    from symptoms.models import Alert
    from tests.factories import ClinicAdminFactory, PatientFactory, TherapistFactory

    therapist = TherapistFactory(email="tess@clinic.test", full_name="Tess Therapist")
    other_therapist = TherapistFactory(email="otto@clinic.test", full_name="Otto Other")
    clinic_admin = ClinicAdminFactory(email="ada@clinic.test", full_name="Ada Admin")
    patient = PatientFactory(
        therapist=therapist,
        user__email=OWNER_EMAIL,
        user__full_name=OWNER_NAME,
        reminders_enabled=True,
    )
    other_patient = PatientFactory(
        therapist=other_therapist,
        user__email="olive@patients.test",
        user__full_name="Olive Other",
        reminders_enabled=True,
    )
    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    assignments = {}
    for person, who in ((patient, therapist), (other_patient, other_therapist)):
        assignments[person.pk] = patient_services.assignment_create(
            patient=person, template=template, assigned_by=who, sessions_per_day=6
        )

    def session_for(person, score=None):
        session, _ = symptom_services.session_log(
            patient=person, idempotency_key=uuid.uuid4(), assignment=assignments[person.pk]
        )
        if score is not None:
            symptom_services.pain_report_for_session(
                session=session, score=score, location="thigh", note="owner's note"
            )
        return session

    session = session_for(patient, score=9)  # 9/10 raises an alert for the therapist
    session_for(other_patient, score=3)
    red_flag = symptom_services.red_flag_report_create(patient=patient, leg_weakness=True)
    reminder_plan_patient(patient=patient)
    reminder_plan_patient(patient=other_patient)
    own_template = template_copy(template=template, owner=therapist)
    link = patient_services.login_link_create(user=patient.user)
    return SimpleNamespace(
        patient=patient,
        other_patient=other_patient,
        therapist=therapist,
        other_therapist=other_therapist,
        clinic_admin=clinic_admin,
        users={
            PATIENT: patient.user,
            OTHER_PATIENT: other_patient.user,
            THERAPIST: therapist,
            OTHER_THERAPIST: other_therapist,
            CLINIC_ADMIN: clinic_admin,
        },
        assignment=assignments[patient.pk],
        session=session,
        unscored_session=session_for(patient),
        pain_report=session.pain,
        red_flag=red_flag,
        alert=Alert.objects.filter(patient=patient).first(),
        reminder_slot=ReminderSlot.objects.filter(patient=patient).first(),
        exercise=Exercise.objects.order_by("pk").first(),
        own_template=own_template,
        own_template_phase=own_template.phases.first(),
        group=Group.objects.get(name="Therapists"),
        audit_event=audit_record(
            request=None, action=AuditAction.VIEW, patient=patient, actor=therapist
        ),
        patient_ct=ContentType.objects.get_for_model(Patient).pk,
        link_token=link.token,
        unsubscribe_token=unsubscribe_token_make(patient_public_id=patient.public_id),
    )


def outcome(response):
    if response.status_code not in {301, 302}:
        return response.status_code
    location = urlsplit(response["Location"])
    if location.path == "/signin/" and location.query.startswith("next="):
        return SIGNIN
    if location.path == "/admin/login/" and location.query.startswith("next="):
        return ADMIN_LOGIN
    return KNOWN_TARGETS.get(location.path, REDIRECT)


def leaks(response) -> list[str]:
    """The owner's name or address in a page shown to someone else."""
    if response.status_code != 200:
        return []
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content)
    else:
        body = response.content
    text = body.decode("utf-8", errors="replace")
    return [marker for marker in (OWNER_EMAIL, OWNER_NAME) if marker in text]


@pytest.mark.parametrize("key", sorted(PATTERNS))
def test_url_access(key, world, client):
    """Each persona gets exactly what the table says; others never see the owner's data."""
    if key not in TABLE:
        pytest.fail(
            f"URL {key!r} (route {PATTERNS[key]!r}) has no entry in TABLE in "
            "tests/test_url_access.py: say what each persona gets."
        )
    wrong = []
    for case in TABLE[key]:
        url = case.url(world)
        assert set(case.expect) == set(PERSONAS), f"{key}: every persona needs an outcome"
        for persona in PERSONAS:
            client.logout()
            if persona != ANON:
                client.force_login(world.users[persona])
            send = client.post if case.method == "POST" else client.get
            response = send(url, case.data)
            got = outcome(response)
            if got != case.expect[persona]:
                wrong.append(
                    f"{case.method} {url} as {persona}: "
                    f"got {got!r}, expected {case.expect[persona]!r}"
                )
            if persona in {OTHER_PATIENT, OTHER_THERAPIST} and not case.link_key:
                shown = leaks(response)
                if shown:
                    wrong.append(f"{case.method} {url} as {persona}: shows the owner's {shown}")
    assert not wrong, "\n".join(wrong)
