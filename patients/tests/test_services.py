import datetime as dt

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from patients import services
from patients.models import Assignment, Patient, PhaseChange


def assign(patient, template, by, **kwargs):
    return services.assignment_create(patient=patient, template=template, assigned_by=by, **kwargs)


@pytest.mark.parametrize(
    ("phase", "low", "high"),
    [("acute", 6, 10), ("sub_acute", 4, 6), ("recovery", 3, 4), ("maintenance", 2, 3)],
)
def test_sessions_per_day_must_lie_inside_the_phase_guideline(
    patient, therapist, flexion_template, phase, low, high
):
    for bad in (low - 1, high + 1):
        with pytest.raises(ValidationError) as excinfo:
            assign(patient, flexion_template, therapist, phase=phase, sessions_per_day=bad)
        message = excinfo.value.message_dict["sessions_per_day"][0]
        assert f"between {low} and {high}" in message
        assert f"you entered {bad}" in message
    assert not Assignment.objects.filter(patient=patient).exists()
    for good in (low, high):
        assignment = assign(
            patient, flexion_template, therapist, phase=phase, sessions_per_day=good
        )
        assert assignment.sessions_per_day == good


def test_database_refuses_sessions_outside_the_guideline(patient, therapist, flexion_template):
    assignment = assign(patient, flexion_template, therapist, phase="acute", sessions_per_day=6)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.filter(pk=assignment.pk).update(sessions_per_day=3)


def test_only_one_active_assignment_per_patient_in_the_database(
    patient, therapist, flexion_template
):
    first = assign(patient, flexion_template, therapist)
    with pytest.raises(IntegrityError), transaction.atomic():
        Assignment.objects.create(
            patient=patient,
            template=flexion_template,
            current_phase="acute",
            sessions_per_day=6,
            phase_started_on=first.started_on,
            started_on=first.started_on,
            assigned_by=therapist,
        )


def test_assigning_a_new_program_ends_the_previous_one(
    patient, therapist, flexion_template, extension_template
):
    first = assign(patient, extension_template, therapist)
    second = assign(patient, flexion_template, therapist, phase="sub_acute")
    first.refresh_from_db()
    assert first.status == "ended" and first.ended_on is not None
    assert second.status == "active"
    assert Assignment.objects.filter(patient=patient, status="active").get() == second
    assert first.history.last().kind == PhaseChange.Kind.ENDED


def test_default_sessions_come_from_the_template(patient, therapist, extension_template):
    assignment = assign(patient, extension_template, therapist, phase="recovery")
    expected = extension_template.phases.get(phase="recovery").default_sessions_per_day
    assert assignment.sessions_per_day == expected


@pytest.mark.parametrize(
    ("screening", "code"),
    [
        ({"is_pregnant": True}, "pregnancy"),
        ({"spinal_stenosis": Patient.Stenosis.NOT_CLEARED}, "stenosis"),
        ({"red_flag_bladder": True}, "red_flags"),
        ({"red_flag_leg_weakness": True}, "red_flags"),
    ],
)
def test_screening_refuses_extension_program(
    patient, therapist, extension_template, screening, code
):
    Patient.objects.filter(pk=patient.pk).update(**screening)
    patient.refresh_from_db()
    with pytest.raises(services.ScreeningRefusal) as excinfo:
        assign(patient, extension_template, therapist)
    assert code in {c.code for c in excinfo.value.concerns if c.blocking}
    assert "Safety override reason" in " ".join(excinfo.value.messages)
    assert not Assignment.objects.filter(patient=patient).exists()

    assignment = assign(
        patient,
        extension_template,
        therapist,
        override_reason="Discussed with her obstetrician; standing work only",
    )
    assert assignment.safety_override_reason.startswith("Discussed")
    assert "safety override" in assignment.history.get().reason


def test_pregnant_patient_can_get_flexion_program_without_override(
    patient, therapist, flexion_template
):
    Patient.objects.filter(pk=patient.pk).update(is_pregnant=True)
    patient.refresh_from_db()
    assignment = assign(patient, flexion_template, therapist)
    assert assignment.safety_override_reason == ""


def test_stenosis_with_clearance_is_not_refused(patient, therapist, extension_template):
    Patient.objects.filter(pk=patient.pk).update(spinal_stenosis=Patient.Stenosis.CLEARED)
    patient.refresh_from_db()
    assert assign(patient, extension_template, therapist).is_active


def test_red_flags_block_even_flexion(patient, therapist, flexion_template):
    Patient.objects.filter(pk=patient.pk).update(red_flag_bowel=True)
    patient.refresh_from_db()
    with pytest.raises(services.ScreeningRefusal):
        assign(patient, flexion_template, therapist)


def test_facet_problems_warn_but_do_not_block(patient, therapist, extension_template):
    from patients.screening import screening_concerns

    Patient.objects.filter(pk=patient.pk).update(spinal_arthritis_or_facet=True)
    patient.refresh_from_db()
    concerns = screening_concerns(patient=patient, template=extension_template)
    assert [(c.code, c.blocking) for c in concerns] == [("facet", False)]
    assert assign(patient, extension_template, therapist).is_active


def test_advance_phase_records_history_and_resets_phase_start(patient, therapist, flexion_template):
    with time_machine.travel(dt.datetime(2026, 3, 2, 9, tzinfo=dt.UTC)):
        assignment = assign(patient, flexion_template, therapist)
    with time_machine.travel(dt.datetime(2026, 3, 6, 9, tzinfo=dt.UTC)):
        services.assignment_advance_phase(
            assignment=assignment, changed_by=therapist, reason="Pain centralised, sleeping better"
        )
    assignment.refresh_from_db()
    assert assignment.current_phase == "sub_acute"
    assert assignment.phase_started_on == dt.date(2026, 3, 6)
    assert assignment.started_on == dt.date(2026, 3, 2)
    expected = flexion_template.phases.get(phase="sub_acute").default_sessions_per_day
    assert assignment.sessions_per_day == expected
    rows = list(
        assignment.history.values_list("kind", "from_phase", "to_phase", "reason", "changed_by")
    )
    assert rows == [
        ("assigned", "", "acute", "Program assigned", therapist.pk),
        ("advanced", "acute", "sub_acute", "Pain centralised, sleeping better", therapist.pk),
    ]


def test_advance_needs_a_reason_and_stops_at_maintenance(patient, therapist, flexion_template):
    assignment = assign(patient, flexion_template, therapist, phase="maintenance")
    with pytest.raises(ValidationError) as excinfo:
        services.assignment_advance_phase(assignment=assignment, changed_by=therapist, reason="  ")
    assert "reason" in excinfo.value.message_dict
    with pytest.raises(ValidationError, match="last phase"):
        services.assignment_advance_phase(
            assignment=assignment, changed_by=therapist, reason="Doing well"
        )
    assert assignment.history.count() == 1


def test_set_sessions_per_day_validates_and_records(patient, therapist, flexion_template):
    assignment = assign(patient, flexion_template, therapist, phase="acute", sessions_per_day=6)
    with pytest.raises(ValidationError):
        services.assignment_set_sessions_per_day(
            assignment=assignment, sessions_per_day=11, changed_by=therapist, reason="More"
        )
    services.assignment_set_sessions_per_day(
        assignment=assignment, sessions_per_day=9, changed_by=therapist, reason="Tolerating well"
    )
    assignment.refresh_from_db()
    assert assignment.sessions_per_day == 9
    last = assignment.history.last()
    assert (last.kind, last.from_sessions_per_day, last.to_sessions_per_day) == (
        "sessions_set",
        6,
        9,
    )


def test_set_phase_can_go_back_after_a_flare_up(patient, therapist, flexion_template):
    assignment = assign(patient, flexion_template, therapist, phase="recovery")
    services.assignment_set_phase(
        assignment=assignment,
        phase="acute",
        sessions_per_day=8,
        changed_by=therapist,
        reason="Flare-up after lifting",
    )
    assignment.refresh_from_db()
    assert (assignment.current_phase, assignment.sessions_per_day) == ("acute", 8)


def test_changes_to_an_ended_program_are_refused(patient, therapist, flexion_template):
    assignment = assign(patient, flexion_template, therapist)
    services.assignment_end(assignment=assignment, ended_by=therapist, reason="Discharged")
    with pytest.raises(ValidationError, match="ended"):
        services.assignment_advance_phase(assignment=assignment, changed_by=therapist, reason="x")


def test_phase_start_uses_the_patients_local_date(therapist, flexion_template):
    from tests.factories import PatientFactory

    sydney = PatientFactory(therapist=therapist, timezone="Australia/Sydney")
    # 20:00 UTC on 1 March is already 2 March in Sydney.
    with time_machine.travel(dt.datetime(2026, 3, 1, 20, tzinfo=dt.UTC)):
        assignment = assign(sydney, flexion_template, therapist)
    assert assignment.started_on == dt.date(2026, 3, 2)


def test_patient_create_has_no_usable_password(therapist):
    patient = services.patient_create(
        email="New.Person@Example.org ",
        full_name=" New Person ",
        therapist=therapist,
        timezone_name="Europe/Berlin",
    )
    assert patient.user.email == "new.person@example.org"
    assert patient.user.full_name == "New Person"
    assert not patient.user.has_usable_password()
    assert not patient.user.is_staff
    with pytest.raises(ValidationError):
        services.patient_create(
            email="new.person@example.org", full_name="Dup", therapist=therapist
        )


def test_patient_create_rejects_unknown_timezone(therapist):
    with pytest.raises(ValidationError) as excinfo:
        services.patient_create(
            email="tz@example.org",
            full_name="Tz",
            therapist=therapist,
            timezone_name="Mars/Olympus",
        )
    assert "timezone" in excinfo.value.message_dict
    assert not Patient.objects.exists()
