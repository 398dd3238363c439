from symptoms.tests.fixtures import (  # noqa: F401
    assigned_patient,
    make_patient,
    other_assigned_patient,
    patient_client,
)
