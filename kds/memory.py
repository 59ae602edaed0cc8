"""Giving freed memory back to the system.

A snapshot burst (every screen reconnecting to 10,000 open orders) allocates
tens of megabytes of short-lived text. CPython frees it, but glibc keeps the
freed heap mapped, so the daemon's RSS would stay at its peak for weeks on a
small box. `malloc_trim` hands it back; elsewhere it is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc.malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


def release_free_memory() -> bool:
    """Return freed heap memory to the OS where the C library can; True if it could."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
