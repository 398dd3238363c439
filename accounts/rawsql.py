"""Hand-written SQL for the two or three reads every patient request makes.

Building a query with the ORM costs more CPU than running it: on the pages
patients open most (Today, logging a session) the compilation of two small
queries was most of the request. Those reads are written once here as SQL
(columns taken from the models' own metadata, so a new field is picked up)
and the rows are turned into ordinary model instances the way the ORM does,
database converters included. Everything else uses the ORM.

tests/test_rawsql.py checks each of these reads against its ORM equivalent.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from django.db import InterfaceError, OperationalError, connection
from django.db.models import Field, Model


@dataclass(frozen=True)
class Columns:
    """The concrete columns of one model under a table alias, in the select list."""

    model: type[Model]
    alias: str
    fields: tuple[Field, ...]

    @classmethod
    def of(cls, model: type[Model], alias: str) -> Columns:
        return cls(model, alias, tuple(model._meta.concrete_fields))

    @property
    def sql(self) -> str:
        quote = connection.ops.quote_name
        return ", ".join(f"{self.alias}.{quote(field.column)}" for field in self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    @cached_property
    def _attnames(self) -> list[str]:
        return [field.attname for field in self.fields]

    @cached_property
    def _converters(self) -> list[tuple[int, object, list]]:
        """(index, column, converters) for the fields whose values need converting,
        exactly what the ORM's compiler would apply on this database."""
        found = []
        for index, field in enumerate(self.fields):
            column = field.get_col(self.alias)
            converters = [
                *connection.ops.get_db_converters(column),
                *column.get_db_converters(connection),
            ]
            if converters:
                found.append((index, column, converters))
        return found

    def load(self, row, start: int) -> Model | None:
        """The instance from ``row[start:start + len(self)]``; None if its key is NULL
        (the row of a LEFT JOIN that found nothing)."""
        values = list(row[start : start + len(self.fields)])
        if values[self._pk_index] is None:
            return None
        for index, column, converters in self._converters:
            if values[index] is not None:
                for converter in converters:
                    values[index] = converter(values[index], column, connection)
        return self.model.from_db(connection.alias, self._attnames, values)

    @cached_property
    def _pk_index(self) -> int:
        return next(i for i, field in enumerate(self.fields) if field.primary_key)


def table(model: type[Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def compact(sql: str) -> str:
    """``sql`` on one line with single spaces, for a long statement sent often.

    psycopg keeps the parsed form of a statement only up to
    ``MAX_CACHED_STATEMENT_LENGTH`` (4 KB) and parses a longer one anew on every
    execution (tests/test_rawsql.py checks the size of each statement here).
    Only for SQL without string literals that hold runs of whitespace.
    """
    return " ".join(sql.split())


def fetch_one(sql: str, params) -> tuple | None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def fetch_one_first(sql: str, params) -> tuple | None:
    """``fetch_one`` for a read that opens a request: it is its own health check.

    With ``CONN_HEALTH_CHECKS`` Django pings a kept connection (``SELECT 1``)
    before the first query of each request, so that a connection the server
    dropped (a restart, an idle timeout) is replaced instead of failing the
    request. For a read, which can simply be run again, the ping is one round
    trip too many: the read goes first, and only if the connection turns out
    to be dead is it closed and the read run once more on a new one. Any
    other error is raised as it is. Inside a transaction, or when the check
    was already done this request, this is plain ``fetch_one``.
    """
    if (
        connection.connection is None
        or not connection.health_check_enabled
        or connection.health_check_done
        or connection.in_atomic_block
    ):
        return fetch_one(sql, params)
    connection.health_check_done = True
    try:
        return fetch_one(sql, params)
    except (OperationalError, InterfaceError):
        if connection.is_usable():
            raise  # the connection is fine: a real error of this read
        connection.close()
    return fetch_one(sql, params)  # on a new connection
