"""Django's Redis cache, keeping one redis-py client per server instead of one per call.

Django builds a new ``redis.Redis`` object for every cache operation, and
redis-py fills a table of about 170 response handlers each time: on a page
whose only cache read is the session, that was a measurable part of the
request. The clients share the same connection pools as before and, like
every Django cache backend instance, each belongs to one thread.
"""

from __future__ import annotations

from django.core.cache.backends import redis as django_redis


class RedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:
            client = self._clients[id(pool)] = self._client(connection_pool=pool)
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = RedisCacheClient
