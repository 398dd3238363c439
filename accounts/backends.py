import functools

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from accounts import rawsql


class EmailBackend(ModelBackend):
    """Django's model backend, loading the patient profile with the user.

    Every patient page needs ``request.user.patient``; fetching it in the
    same query as the user saves one query per request. Staff have no
    profile, which the join records too (accessing it raises, no query).

    This runs on every signed-in request, so the query is written out once
    (accounts/rawsql.py) instead of being built by the ORM each time; it is
    the ORM's ``select_related("patient").get(pk=...)``, row for row.
    """

    def get_user(self, user_id):
        user = load_user_with_patient(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


@functools.cache
def _user_query() -> tuple[rawsql.Columns, rawsql.Columns, str]:
    from django.contrib.auth import get_user_model

    from patients.models import Patient

    user_model = get_user_model()
    users, patients = rawsql.Columns.of(user_model, "u"), rawsql.Columns.of(Patient, "p")
    sql = (
        f"SELECT {users.sql}, {patients.sql} "  # noqa: S608 (names from model metadata; values are parameters)
        f"FROM {rawsql.table(user_model)} u "
        f"LEFT JOIN {rawsql.table(Patient)} p ON p.user_id = u.id "
        "WHERE u.id = %s"
    )
    return users, patients, sql


def load_user_with_patient(user_id):
    """The user and their patient profile (or the record that there is none), one query."""
    users, patients, sql = _user_query()
    try:
        pk = users.model._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    row = rawsql.fetch_one(sql, [pk])
    if row is None:
        return None
    user = users.load(row, 0)
    patient = patients.load(row, len(users))
    # What select_related leaves behind: user.patient (or its absence) and
    # patient.user, both answered without a query.
    users.model._meta.get_field("patient").set_cached_value(user, patient)
    if patient is not None:
        patients.model._meta.get_field("user").set_cached_value(patient, user)
    return user
