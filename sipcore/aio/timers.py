"""Timers for the sans-IO core: loop handles keyed by (owner, name), never tasks (STYLE item 12).

The core speaks in monotonic seconds (``loop.time()``); a ``SetTimer(name, at)`` action becomes
one ``loop.call_at`` handle, replaced when the same timer is set again and dropped on cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Protocol

__all__ = ["TimerService", "Timers"]


class Timers(Protocol):
    """What the server needs of a timer service (a fake clock in benchmarks and tests)."""

    def now(self) -> float: ...

    def set(self, owner: Hashable, name: str, at: float, fire: Callable[[Hashable, str], None]) -> None: ...

    def cancel(self, owner: Hashable, name: str) -> None: ...


class TimerService:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._handles: dict[tuple[Hashable, str], asyncio.TimerHandle] = {}

    def now(self) -> float:
        return self._loop.time()

    def set(self, owner: Hashable, name: str, at: float, fire: Callable[[Hashable, str], None]) -> None:
        key = (owner, name)
        old = self._handles.pop(key, None)
        if old is not None:
            old.cancel()
        self._handles[key] = self._loop.call_at(at, self._fire, key, fire)

    def cancel(self, owner: Hashable, name: str) -> None:
        handle = self._handles.pop((owner, name), None)
        if handle is not None:
            handle.cancel()

    def cancel_owner(self, owner: Hashable, names: tuple[str, ...]) -> None:
        for name in names:
            self.cancel(owner, name)

    def _fire(self, key: tuple[Hashable, str], fire: Callable[[Hashable, str], None]) -> None:
        self._handles.pop(key, None)
        fire(key[0], key[1])

    def __len__(self) -> int:
        return len(self._handles)
