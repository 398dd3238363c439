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

A write can go further and check the session inside its own statement
(``verified_session_sql``): the session row also keeps the backend and the
password HMAC that Django checks (``Session.auth_backend``/``auth_hash``),
and PostgreSQL can work out that HMAC itself from the user's current password
hash. The statement then writes only for a session Django would accept, and
``SessionStore.adopt()`` hands the row it read to Django as if ``load()`` had
read it. The tap (symptoms.services.session_log_signed_in) uses this: one
round trip instead of two.
"""

from __future__ import annotations

import copy
import functools
import hashlib
from contextvars import ContextVar

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends import db
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.signals import request_started
from django.db import connection
from django.utils import timezone
from django.utils.encoding import force_bytes

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

    def decode(self, session_data):
        """Django's ``decode``, with the signature of data already verified in this
        process not checked again (``_verified``); bad data goes to Django's own."""
        try:
            data = _verified(
                session_data,
                self.key_salt,
                self.serializer,
                (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS),
            )
        except Exception:  # Django's decode says what was wrong
            return super().decode(session_data)
        return copy.deepcopy(data)  # the kept copy is never handed out

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
        return self._take(row)

    def _take(self, row):
        """The session data in ``row[0]``; the user after it is kept for get_user()."""
        from accounts.backends import user_from_row

        data = self.decode(row[0])
        _loaded_user.set(user_from_row(row, 1))  # after session_data
        return data

    def adopt(self, row) -> None:
        """Take the session a statement read (``verified_session_sql``'s columns)
        as this request's, as if ``load()`` had read it: no query."""
        self._session_cache = self._take(row)

    def create_model_instance(self, data):
        session = super().create_model_instance(data)
        session.user_id = _user_pk(data.get(SESSION_KEY))
        if session.user_id is None:
            session.auth_backend = session.auth_hash = ""
        else:
            session.auth_backend = data.get(BACKEND_SESSION_KEY) or ""
            session.auth_hash = data.get(HASH_SESSION_KEY) or ""
        return session


@functools.lru_cache(maxsize=2048)
def _verified(session_data: str, salt: str, serializer, keys: tuple[str, ...]) -> dict:
    """The data of a signed session, as ``signing.loads`` gives it (and raises).

    A session's stored data changes only when it is saved (once a day, when
    it is renewed), and every request of a signed-in patient decodes it:
    checking its signature (an HMAC), then unpacking it, was about a tenth of
    a tap's own Python time. The same string under the same keys always gives
    the same data, so each worker checks a string once; ``keys`` (the secret
    and its fallbacks) is part of the cache key, so a string is checked again
    under other keys. Failures are not kept.
    """
    return signing.loads(session_data, salt=salt, serializer=serializer)


def _user_pk(value):
    if value is None:
        return None
    from django.contrib.auth import get_user_model

    try:
        return get_user_model()._meta.pk.to_python(value)
    except ValidationError:
        return None


# --- A session checked inside a write's own statement ---------------------------
#
# What Django accepts as signed in (django.contrib.auth.get_user, with our
# backend): a session row not yet expired whose data names a user, a backend
# in AUTHENTICATION_BACKENDS and a hash equal to the user's
# get_session_auth_hash() (an HMAC-SHA256 of their password hash, keyed from
# SECRET_KEY), the user being active. verified_session_sql() checks the same
# things in SQL, on the copies kept in the row's own columns, and PostgreSQL
# works out the HMAC from the key's two padded halves, passed as parameters.
# Whatever it cannot prove (a session from before these columns, one signed
# with a fallback key, another Django's HMAC) it simply does not find: the
# caller then goes the usual way, where Django decides.

_HMAC_SALT = b"django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
_SHA256_BLOCK = 64


@functools.cache
def _hmac_pads(secret: str) -> tuple[bytes, bytes]:
    """HMAC-SHA256's inner and outer padded keys for Django's session auth hash
    under ``secret`` (django.utils.crypto.salted_hmac: key = sha256(salt + secret))."""
    key = hashlib.sha256(_HMAC_SALT + force_bytes(secret)).digest().ljust(_SHA256_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def session_auth_hash_sql(password: str) -> str:
    """SQL for ``user.get_session_auth_hash()`` of the password hash ``password``
    (an SQL expression), with the parameters %(hmac_inner)s and %(hmac_outer)s."""
    return (
        "encode(sha256(%(hmac_outer)s || "
        f"sha256(%(hmac_inner)s || convert_to({password}, 'UTF8'))), 'hex')"
    )


@functools.cache
def verified_session_sql() -> str:
    """A SELECT (PostgreSQL) of the session row %(session_key)s signs in, with
    the user and their patient profile, only if Django would accept it now and
    the patient's time zone is %(zone)s.

    Columns: session_data, the user's, the patient's (what ``adopt()`` takes),
    then the patient's id again as ``patient_id``. Parameters: those of
    ``verified_session_params()``.
    """
    from accounts.backends import user_columns

    users, patients = user_columns()
    return rawsql.compact(
        f"""
        SELECT s.session_data, {users.sql}, {patients.sql}, p.id AS patient_id
        {_from_session(inner=True)}
        WHERE s.session_key = %(session_key)s AND s.expire_date > %(session_now)s
          AND u.is_active AND p.timezone = %(zone)s
          AND s.auth_backend = ANY(%(auth_backends)s)
          AND s.auth_hash = {session_auth_hash_sql("u.password")}
        """
    )


def verified_session_params(session_key: str, zone: str) -> dict:
    inner, outer = _hmac_pads(settings.SECRET_KEY)
    return {
        "session_key": session_key,
        "session_now": connection.ops.adapt_datetimefield_value(timezone.now()),
        "zone": zone,
        "auth_backends": list(settings.AUTHENTICATION_BACKENDS),
        "hmac_inner": inner,
        "hmac_outer": outer,
    }


@functools.cache
def verified_session_width() -> int:
    """How many columns verified_session_sql() selects."""
    from accounts.backends import user_columns

    users, patients = user_columns()
    return 1 + len(users) + len(patients) + 1


@functools.cache
def _session_query() -> str:
    """session_data, then the user's and the patient's columns."""
    from accounts.backends import user_columns

    users, patients = user_columns()
    return (
        f"SELECT s.session_data, {users.sql}, {patients.sql} "
        f"{_from_session(inner=False)} "
        "WHERE s.session_key = %s AND s.expire_date > %s"
    )


def _from_session(*, inner: bool) -> str:
    """FROM the session ``s``, its user ``u`` and their patient profile ``p``;
    LEFT JOINs unless ``inner`` (then only a session with both)."""
    from accounts.backends import user_columns
    from accounts.models import Session

    users, patients = user_columns()
    join = "JOIN" if inner else "LEFT JOIN"
    user_table = rawsql.table(users.model)
    if connection.vendor == "postgresql":
        # The user looked up by the session's user_id (LATERAL ... OFFSET 0: a
        # subquery the planner keeps as written). As a plain join, the plan
        # PostgreSQL caches for this statement on a clinic-sized users table
        # was a merge join reading the users' primary key from its start:
        # every user below this one, on every request.
        user_join = (
            f"{join} LATERAL (SELECT * FROM {user_table} "  # noqa: S608
            "WHERE id = s.user_id OFFSET 0) u ON TRUE"
        )
    else:
        user_join = f"{join} {user_table} u ON u.id = s.user_id"
    return (
        f"FROM {rawsql.table(Session)} s {user_join} "  # (names from model metadata)
        f"{join} {rawsql.table(patients.model)} p ON p.user_id = u.id"
    )
