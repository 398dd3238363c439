import functools

from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import ValidationError

from accounts import rawsql
from accounts.sessions import take_loaded_user


class EmailBackend(ModelBackend):
    """Django's model backend, loading the patient profile with the user.

    Every patient page needs ``request.user.patient``; fetching it in the
    same query as the user saves one query per request. Staff have no
    profile, which the join records too (accessing it raises, no query).

    This runs on every signed-in request, so the query is written out once
    (accounts/rawsql.py) instead of being built by the ORM each time; it is
    the ORM's ``select_related("patient").get(pk=...)``, row for row. On a
    request the user normally comes with the session, in the same query.
    """

    def get_user(self, user_id):
        # Usually read already, with the session (accounts/sessions.py).
        user = take_loaded_user(user_id) or load_user_with_patient(user_id)
        return user if user is not None and self.user_can_authenticate(user) else None


@functools.cache
def user_columns() -> tuple[rawsql.Columns, rawsql.Columns]:
    """The user's columns (alias ``u``) and their patient profile's (alias ``p``)."""
    from django.contrib.auth import get_user_model

    from patients.models import Patient

    return rawsql.Columns.of(get_user_model(), "u"), rawsql.Columns.of(Patient, "p")


@functools.cache
def _user_query() -> str:
    users, patients = user_columns()
    return (
        f"SELECT {users.sql}, {patients.sql} "  # noqa: S608 (names from model metadata; values are parameters)
        f"FROM {rawsql.table(users.model)} u "
        f"LEFT JOIN {rawsql.table(patients.model)} p ON p.user_id = u.id "
        "WHERE u.id = %s"
    )


def load_user_with_patient(user_id):
    """The user and their patient profile (or the record that there is none), one query."""
    users, _patients = user_columns()
    try:
        pk = users.model._meta.pk.to_python(user_id)
    except ValidationError:
        return None
    row = rawsql.fetch_one(_user_query(), [pk])
    return None if row is None else user_from_row(row, 0)


def user_from_row(row, start: int):
    """The user in ``row[start:]`` (user columns, then patient columns), or None.

    What select_related leaves behind: user.patient (or its absence) and
    patient.user, both answered without a query.
    """
    users, patients = user_columns()
    user = users.load(row, start)
    if user is None:
        return None
    patient = patients.load(row, start + len(users))
    users.model._meta.get_field("patient").set_cached_value(user, patient)
    if patient is not None:
        patients.model._meta.get_field("user").set_cached_value(patient, user)
    return user
