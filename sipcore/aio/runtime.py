"""The process entry point for the event loop: only here is uvloop chosen (STYLE item 2)."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable

import uvloop

__all__ = ["run_until_signalled"]


def run_until_signalled(main: Callable[[asyncio.Event], Awaitable[int]]) -> int:
    """Run ``main(stop)`` on uvloop; SIGINT/SIGTERM set ``stop`` so ``main`` can shut down cleanly."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        return await main(stop)

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as r:
        return r.run(runner())
