"""Sessions in the database, cached in Redis, that outlive Redis being away.

Django's ``cached_db`` store reads the cache first and the database when the key is not
there, then writes what it read back into the cache; with Redis away that write raises, and a
page or a WebSocket upgrade with a session cookie failed (daphne answered the upgrade 500). The
database is the sessions' own store, so a read goes on without the cache. Writes (log-in,
log-out) are left to fail loudly: a log-out that deleted the row but not a cached copy would
leave the session valid once Redis answers again.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import redis
from django.contrib.sessions.backends import cached_db

if TYPE_CHECKING:
    from django.contrib.sessions.models import Session
    from django.core.cache.backends.base import BaseCache

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    """``cached_db`` whose reads fall back to the database when the cache fails."""

    if TYPE_CHECKING:  # Django's, missing from django-stubs
        _cache: BaseCache

        def _get_session_from_db(self) -> Session | None: ...

    def load(self) -> dict[str, Any]:
        try:
            data = self._cache.get(self.cache_key)
            cache_answers = True
        except Exception as error:  # noqa: BLE001 - as Django's own load(): any cache failure
            logger.warning("sessions: cache unavailable (%r); read from the database", error)
            data, cache_answers = None, False
        if data is not None:
            return data
        row = self._get_session_from_db()
        if row is None:
            return {}
        data = self.decode(row.session_data)
        if cache_answers:
            try:
                self._cache.set(self.cache_key, data, self.get_expiry_age(expiry=row.expire_date))
            except redis.RedisError as error:
                logger.warning("sessions: not cached (%r)", error)
        return data
