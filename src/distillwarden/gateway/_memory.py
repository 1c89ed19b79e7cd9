"""Keep the gateway's resident memory flat: after each new Parquet segment, hand freed heap
back to the operating system instead of keeping it mapped. With the gateway's default
child-process conversion there is little to give back; with ``event_conversion="thread"``
the conversion's burst of short-lived Python and Arrow objects is returned this way."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from typing import Any

__all__ = ["PROCESS_ENV", "MemoryTrimmer"]

_log = logging.getLogger("distillwarden.gateway")

#: Environment for the serving process (set before it starts; explicit values win): two
#: malloc arenas instead of one per thread, and Arrow allocating from malloc so that what it
#: frees can be trimmed.
PROCESS_ENV = {"MALLOC_ARENA_MAX": "2", "ARROW_DEFAULT_MEMORY_POOL": "system"}


def _malloc_trim() -> Callable[[int], Any] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to do
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim  # type: ignore[no-any-return]


class MemoryTrimmer:
    """Background task calling ``malloc_trim(0)`` after each new event segment."""

    def __init__(self, segments_written: Callable[[], int], *, every_s: float = 2.0) -> None:
        self._count = segments_written
        self.every_s = every_s
        self._trim = _malloc_trim()
        self._task: asyncio.Task[None] | None = None
        self.trims = 0

    def start(self) -> None:
        if self._trim is not None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        last = self._count()
        while True:
            await asyncio.sleep(self.every_s)
            now = self._count()
            if now != last and self._trim is not None:
                last = now
                self._trim(0)
                self.trims += 1
