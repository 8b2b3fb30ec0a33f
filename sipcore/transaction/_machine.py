"""The table runner shared by the four transaction kinds (h2 ``process_input``).

A subclass provides ``_table``: ``{(state, TxInput): (action_fn | None, next_state)}``. A missing
entry means:

- for a local input (``USER_*``): our TU did something illegal -> ``LocalProtocolError``;
- for a remote input or timer: ignore it. The RFC says to absorb stray retransmissions, and
  the peer must never be able to make us raise. Entries that the RFC names explicitly as
  "absorb" are still written in the tables (with ``None`` and the same state) so the diagrams
  show them.

A timer that fires while not armed (cancelled, or already superseded) is ignored before the
table is consulted, so the I/O glue may deliver a late fire without harm.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Generic, TypeVar

from sipcore.errors import LocalProtocolError

from .events import (
    Action,
    CancelTimer,
    Destination,
    Input,
    SetTimer,
    Terminated,
    TimerFired,
    TxInput,
    TxKey,
    classify,
)
from .timers import TimerConfig

__all__ = ["ActionFn", "Transaction"]

ActionFn = Callable[[Any, Any, float], list[Action]]
S = TypeVar("S", bound=enum.Enum)


class Transaction(Generic[S]):
    """Common state of a transaction; see the four subclasses for the automata."""

    __slots__ = ("_armed", "config", "dest", "key", "reliable", "state")

    state: S
    _table: ClassVar[Mapping[tuple[Any, TxInput], tuple[ActionFn | None, Any]]]
    _terminated: ClassVar[enum.Enum]

    def __init__(self, key: TxKey, dest: Destination, config: TimerConfig) -> None:
        self.key = key
        self.dest = dest
        self.config = config
        self.reliable = dest.reliable
        self._armed: dict[str, float] = {}  # timer name -> deadline

    @property
    def terminated(self) -> bool:
        return bool(self.state is self._terminated)

    @property
    def armed_timers(self) -> dict[str, float]:
        """A copy of the armed timers (name -> deadline), for tests and introspection."""
        return dict(self._armed)

    def handle(self, event: Input, now: float) -> list[Action]:
        """Feed one input; return the actions to perform, in order."""
        sym = classify(event)
        if sym is None:
            return []
        if type(event) is TimerFired:
            if event.name not in self._armed:
                return []  # stale: cancelled or superseded
            del self._armed[event.name]
        entry = self._table.get((self.state, sym))
        if entry is None:
            if sym.is_local:
                raise LocalProtocolError(
                    f"{type(self).__name__}: {sym.value} not allowed in {self.state.name}"
                )
            return []
        fn, new_state = entry
        old_state = self.state
        self.state = new_state
        actions = fn(self, event, now) if fn is not None else []
        if new_state is self._terminated and old_state is not self._terminated:
            actions.extend(CancelTimer(self.key, name) for name in self._armed)
            self._armed.clear()
            actions.append(Terminated(self.key, sym.value))
        return actions

    def abort(self, reason: str) -> list[Action]:
        """Terminate now, outside the table: the TU gives up on the transaction.

        For the cases where the RFC makes the TU, not a transaction timer, end it: an INVITE
        client transaction still PROCEEDING 64*T1 after its CANCEL (RFC 3261 9.1), or a server
        transaction whose TU will never answer. No message is sent and nothing is delivered.
        """
        if self.state is self._terminated:
            return []
        self.state = self._terminated  # type: ignore[assignment]
        actions: list[Action] = [CancelTimer(self.key, name) for name in self._armed]
        self._armed.clear()
        actions.append(Terminated(self.key, reason))
        return actions

    def _set_timer(self, name: str, at: float) -> SetTimer:
        self._armed[name] = at
        return SetTimer(self.key, name, at)

    def _cancel_timers(self, *names: str) -> list[Action]:
        out: list[Action] = []
        for name in names:
            if self._armed.pop(name, None) is not None:
                out.append(CancelTimer(self.key, name))
        return out
