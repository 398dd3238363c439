"""Time-ordered UUIDs for the most written rows (accounts/ids.py)."""

from __future__ import annotations

import time
import uuid

from accounts.ids import uuid7


def _milliseconds(value: uuid.UUID) -> int:
    return value.int >> 80


def test_version_7_with_the_rfc_variant():
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert uuid.UUID(str(value)) == value


def test_starts_with_the_time_in_milliseconds():
    before = time.time_ns() // 1_000_000
    value = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= _milliseconds(value) <= after


def test_later_ids_sort_after_earlier_ones():
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    assert first < second  # UUID order is the order of their 128-bit integers
    assert str(first) < str(second)  # and of their text, as PostgreSQL compares them


def test_the_rest_is_random():
    values = {uuid7() for _ in range(2000)}
    assert len(values) == 2000
    random_bits = {value.int & ((1 << 62) - 1) for value in values}
    assert len(random_bits) == 2000
