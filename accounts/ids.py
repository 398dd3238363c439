"""Time-ordered UUIDs (version 7, RFC 9562) for the rows written most often.

A random UUID (version 4) as a unique key puts each new row at a random
place in its index: every insert touches some old leaf page, which must be
in memory, and after each checkpoint PostgreSQL writes that whole 8 KB page
to the WAL the first time it changes. A version 7 UUID starts with the time
in milliseconds, so new keys go to the end of the index, as a serial id's
do. The key stays unguessable (74 random bits); it shows when its row was
made, to the millisecond, which the pages showing these rows show anyway.
"""

from __future__ import annotations

import os
import time
import uuid

_TIME_MASK = (1 << 48) - 1
_VERSION_7 = 0x7 << 76
_VARIANT_RFC_9562 = 0x2 << 62
_VERSION_AND_VARIANT_BITS = (0xF << 76) | (0x3 << 62)


def uuid7() -> uuid.UUID:
    """48 bits of Unix time in milliseconds, the version, then random bits and the variant."""
    milliseconds = time.time_ns() // 1_000_000
    value = (milliseconds & _TIME_MASK) << 80 | int.from_bytes(os.urandom(10))
    return uuid.UUID(int=value & ~_VERSION_AND_VARIANT_BITS | _VERSION_7 | _VARIANT_RFC_9562)
