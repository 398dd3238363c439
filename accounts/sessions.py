"""Sessions in the database, read through the cache (Redis in production).

Every signed-in page reads the session; from Redis that costs a fraction of
a database query. The database stays the source of truth: Django's
``cached_db`` store writes both, and reads the database when the cache does
not have the session.

Django's store trusts the cache a little too much for health data, so this
one differs in two ways:

- The cache being down never breaks a page. A failed read falls back to the
  database, a failed write is logged (the next read refills the cache).
- Signing out fails closed. If the cached copy of a signed-in session
  cannot be deleted, the sign-out raises instead of leaving a copy that
  would still sign the browser in once the cache is back. Signing in with
  the cache down works: the anonymous session it replaces may stay cached,
  which gives nobody anything.

Who is signed in is still checked against the database on every request (the
user row, its active flag and its password hash), so a cached session never
outlives a deactivated account or a password change.
"""

from __future__ import annotations

import logging

from django.contrib.sessions.backends import cached_db

logger = logging.getLogger("django.contrib.sessions")


class SessionStore(cached_db.SessionStore):
    def load(self):
        try:
            data = self._cache.get(self.cache_key)
        except Exception:
            logger.warning("Session cache unavailable; reading the session from the database")
            return self._load_from_db(fill_cache=False)
        if data is not None:
            return data
        return self._load_from_db(fill_cache=True)

    def _load_from_db(self, *, fill_cache: bool) -> dict:
        stored = self._get_session_from_db()
        if not stored:
            return {}
        data = self.decode(stored.session_data)
        if fill_cache:
            try:
                self._cache.set(
                    self.cache_key, data, self.get_expiry_age(expiry=stored.expire_date)
                )
            except Exception:
                logger.warning("Session cache unavailable; the session was not cached")
        return data

    def cycle_key(self):
        signed_in = bool(self._session.get("_auth_user_id"))
        key = self.session_key
        data = self._session
        self.create()
        self._session_cache = data
        if key:
            self._delete(key, fail_closed=signed_in)

    def delete(self, session_key=None):
        self._delete(session_key, fail_closed=True)

    def _delete(self, session_key, *, fail_closed: bool) -> None:
        try:
            super().delete(session_key)
        except Exception:
            if fail_closed:
                raise
            logger.warning("Session cache unavailable; an anonymous session stays cached")

    def exists(self, session_key):
        # Used when creating a key: the database alone decides (a key that
        # is only in the cache is one the database lost, never a free one).
        return bool(session_key) and super(cached_db.SessionStore, self).exists(session_key)
