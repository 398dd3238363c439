"""Fixtures for the patient's pages: a patient on a program, signed-in clients.

Imported by symptoms/tests/conftest.py and by patients/tests/test_patient_*.py.
"""

from __future__ import annotations

import pytest

from patients import services as patient_services
from tests.factories import PatientFactory


@pytest.fixture
def assigned_patient(patient, therapist, extension_template):
    patient_services.assignment_create(
        patient=patient, template=extension_template, assigned_by=therapist, sessions_per_day=6
    )
    return patient


@pytest.fixture
def other_assigned_patient(other_patient, other_therapist, extension_template):
    patient_services.assignment_create(
        patient=other_patient,
        template=extension_template,
        assigned_by=other_therapist,
        sessions_per_day=6,
    )
    return other_patient


@pytest.fixture
def patient_client(client, assigned_patient):
    client.force_login(assigned_patient.user)
    return client


@pytest.fixture
def make_patient(therapist):
    def make(**kwargs):
        return PatientFactory(therapist=therapist, **kwargs)

    return make
