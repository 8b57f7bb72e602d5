"""A one-way channel from the walker's worker thread to the event loop, batching under load.

`asyncio.Queue` + `call_soon_threadsafe` per item wakes the loop (a self-pipe write and a GIL
hand-over) for every stream chunk. Here the worker appends to a deque and wakes the loop only
when the reader is parked; a reader that fell behind takes every pending chunk at once and
sends them as one write, so fifty busy streams cost fewer wake-ups and fewer socket writes,
while a lone stream still gets each chunk the moment it arrives.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from typing import Any


class Channel:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: Any) -> None:
        """From any thread."""
        with self._lock:
            self._items.append(item)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._loop.call_soon_threadsafe(_wake, waiter)

    async def take(self) -> list[Any]:
        """Every item put since the last take (at least one); waits when there is none."""
        while True:
            with self._lock:
                if self._items:
                    items = list(self._items)
                    self._items.clear()
                    return items
                waiter = self._waiter = self._loop.create_future()
            await waiter


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
