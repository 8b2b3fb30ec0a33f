"""Print the transaction state diagrams, drawn from the transition tables themselves.

Like h11's ``make-state-diagrams.py``: the tables in ``sipcore/transaction/*.py`` are the only
source, so the pictures cannot drift from the code.

Usage::

    python tools/transaction_diagrams.py               # mermaid stateDiagram-v2, all four
    python tools/transaction_diagrams.py --dot         # Graphviz
    python tools/transaction_diagrams.py client_invite # one kind only
"""

from __future__ import annotations

import argparse
import enum
import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from sipcore.transaction import (
    ClientInviteState,
    ClientInviteTransaction,
    ClientNonInviteState,
    ClientNonInviteTransaction,
    ServerInviteState,
    ServerInviteTransaction,
    ServerNonInviteState,
    ServerNonInviteTransaction,
)
from sipcore.transaction._machine import Transaction

# kind -> (class, initial state, what start() does)
KINDS: dict[str, tuple[type[Transaction[Any]], enum.Enum, str]] = {
    "client_invite": (ClientInviteTransaction, ClientInviteState.CALLING, "send INVITE, Timer A, B"),
    "client_non_invite": (
        ClientNonInviteTransaction,
        ClientNonInviteState.TRYING,
        "send request, Timer E, F",
    ),
    "server_invite": (ServerInviteTransaction, ServerInviteState.PROCEEDING, "INVITE to TU, Trying timer"),
    "server_non_invite": (ServerNonInviteTransaction, ServerNonInviteState.TRYING, "request to TU"),
}


def edges(cls: type[Transaction[Any]]) -> dict[tuple[str, str], list[str]]:
    """(from, to) -> labels ``input / action``, in table order; parallel edges merged."""
    out: dict[tuple[str, str], list[str]] = defaultdict(list)
    for (state, sym), (fn, new_state) in cls._table.items():
        # No action function: the input is absorbed (same state) or just ends the transaction.
        action = fn.__name__.lstrip("_") if fn is not None else "-"
        out[(state.name, new_state.name)].append(f"{sym.value} / {action}")
    return out


def mermaid(kind: str) -> Iterator[str]:
    cls, initial, start = KINDS[kind]
    yield f"%% {cls.__name__}"
    yield "stateDiagram-v2"
    yield f"    [*] --> {initial.name}: start / {start}"
    for (src, dst), labels in edges(cls).items():
        yield f"    {src} --> {dst}: {'<br/>'.join(labels)}"
    yield "    TERMINATED --> [*]"


def dot(kind: str) -> Iterator[str]:
    cls, initial, start = KINDS[kind]
    yield f"digraph {cls.__name__} {{"
    yield "    rankdir=LR; node [shape=box, style=rounded];"
    yield "    start [shape=point]; TERMINATED [shape=doublecircle];"
    yield f'    start -> {initial.name} [label="{start}"];'
    for (src, dst), labels in edges(cls).items():
        label = "\\n".join(labels)
        yield f'    {src} -> {dst} [label="{label}"];'
    yield "}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("kinds", nargs="*", help=f"any of {', '.join(KINDS)} (default: all)")
    parser.add_argument("--dot", action="store_true", help="Graphviz instead of mermaid")
    args = parser.parse_args(argv)
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kind(s): {', '.join(sorted(unknown))}")
    render = dot if args.dot else mermaid
    for i, kind in enumerate(args.kinds or KINDS):
        if i:
            print()
        print("\n".join(render(kind)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
