"""Sessions in the database, read together with the user they sign in.

Every signed-in request needs two things: the session, and the user row it
points to (Django checks the account is active and the password hash behind
the session on every request, so a session never outlives a deactivated
account or a password change). Read separately that is two round trips,
plus a third to a cache if sessions are cached. Here the session table
(``accounts.Session``) keeps the user's id beside the session data, and one
query reads the session, the user and their patient profile:

- ``SessionStore.load()`` runs that query, decodes the session and keeps
  the user it found for this request only (a context variable, reset when
  each request starts);
- ``accounts.backends.EmailBackend.get_user()``, which Django calls with the
  user id from the session, takes that user instead of querying again, but
  only when the ids match. Django then checks the active flag and the
  session hash on it exactly as on a user it had read itself.

No cache sits in front: the database is the only copy, so signing out
deletes the one row that signs a browser in, and Redis being down changes
nothing for sessions.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends import db
from django.core.exceptions import ValidationError
from django.core.signals import request_started
from django.db import connection
from django.utils import timezone

from accounts import rawsql

# The user the current request's session signs in, as read with the session.
_loaded_user: ContextVar[object | None] = ContextVar("accounts_session_user", default=None)


def take_loaded_user(user_id):
    """The user read with this request's session, if it is ``user_id``; once."""
    user = _loaded_user.get()
    if user is None:
        return None
    _loaded_user.set(None)
    try:
        same = type(user)._meta.pk.to_python(user_id) == user.pk
    except ValidationError:
        return None
    return user if same else None


def _forget_loaded_user(**kwargs) -> None:
    _loaded_user.set(None)


request_started.connect(_forget_loaded_user, dispatch_uid="accounts_sessions_forget_user")


class SessionStore(db.SessionStore):
    @classmethod
    def get_model_class(cls):
        from accounts.models import Session

        return Session

    def load(self):
        _loaded_user.set(None)
        if self.session_key is None:  # no cookie, or not a well-formed key: nothing to read
            return {}
        now = connection.ops.adapt_datetimefield_value(timezone.now())
        # The first query of a signed-in request: it doubles as the check that
        # the kept database connection still works (see fetch_one_first).
        row = rawsql.fetch_one_first(_session_query(), [self.session_key, now])
        if row is None:
            self._session_key = None
            return {}
        from accounts.backends import user_from_row

        data = self.decode(row[0])
        _loaded_user.set(user_from_row(row, 1))  # after session_data
        return data

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = _user_pk(data.get(SESSION_KEY))
        return session


def _user_pk(value):
    if value is None:
        return None
    from django.contrib.auth import get_user_model

    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None


@functools.cache
def _session_query() -> str:
    """session_data, then the user's and the patient's columns."""
    from accounts.backends import user_columns
    from accounts.models import Session

    users, patients = user_columns()
    user_table = rawsql.table(users.model)
    if connection.vendor == "postgresql":
        # The user looked up by the session's user_id (LATERAL ... OFFSET 0: a
        # subquery the planner keeps as written). As a plain join, the plan
        # PostgreSQL caches for this statement on a clinic-sized users table
        # was a merge join reading the users' primary key from its start:
        # every user below this one, on every request.
        user_join = (
            f"LEFT JOIN LATERAL (SELECT * FROM {user_table} "  # noqa: S608
            "WHERE id = s.user_id OFFSET 0) u ON TRUE"
        )
    else:
        user_join = f"LEFT JOIN {user_table} u ON u.id = s.user_id"
    return (
        f"SELECT s.session_data, {users.sql}, {patients.sql} "  # noqa: S608 (names from model metadata; values are parameters)
        f"FROM {rawsql.table(Session)} s {user_join} "
        f"LEFT JOIN {rawsql.table(patients.model)} p ON p.user_id = u.id "
        "WHERE s.session_key = %s AND s.expire_date > %s"
    )
