"""Whole batches from Faust's consumer, without Faust's per-message stream.

Faust hands every message through a channel queue, an Event, sensors and a stream iterator
before `take_events` groups them again; on this machine that path alone capped the worker at
about 5,600 events/s, more than the writes cost. The worker needs none of it: it writes batches.
So the conductor's handler for the events topic only tracks the message (Faust still counts it
as unacknowledged, so a rebalance waits for it and commits stop before it) and appends it to a
`BatchBuffer`; the materializer takes batches from the buffer and acknowledges each message
after its batch is written. Group membership, fetching, pausing during rebalances and the
offset commits stay Faust's.

`BatchConsumer` removes the other per-message cost: Faust's drain loop runs each message's
handler as a task raced against a flow suspension (two tasks and an `asyncio.wait` per message,
a quarter of the worker's time). While flow is not suspended it now appends a message of a
batched topic to its buffer itself (what the conductor's handler would do), and awaits other
handlers directly. Waiting on a full buffer ends when the buffer is cleared on resume, so a
rebalance still cannot hang on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from faust.transport.conductor import Conductor
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer
from faust.types import TP, Message


class BatchBuffer:
    """Messages waiting for the materializer, bounded: a full buffer makes the consumer wait,
    which stops fetching (back-pressure) instead of growing memory."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._messages: list[Message] = []
        self._batch_size = 1
        self._ready = asyncio.Event()  # at least `_batch_size` messages are waiting
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()

    def __len__(self) -> int:
        return len(self._messages)

    def offer(self, message: Message) -> bool:
        """Append if there is room (the consumer's fast path); False when full."""
        if len(self._messages) >= self.capacity:
            return False
        self._messages.append(message)
        self._not_empty.set()
        if len(self._messages) >= self._batch_size:
            self._ready.set()
        return True

    async def put(self, message: Message) -> None:
        while not self.offer(message):
            self._not_full.clear()
            await self._not_full.wait()

    async def take(self, max_messages: int, within_s: float) -> list[Message]:
        """Up to `max_messages`: as soon as that many wait, else what has arrived when the
        current `within_s` window closes. Windows run back to back from the call, as Faust's
        `take` does, so on a quiet stream a lone message waits half a window on average, not a
        whole one. Never an empty list."""
        called = time.monotonic()
        await self._not_empty.wait()
        if len(self._messages) < max_messages:
            self._batch_size = max_messages
            self._ready.clear()
            waited = time.monotonic() - called
            deadline = time.monotonic() + within_s - waited % within_s
            try:
                await asyncio.wait_for(self._ready.wait(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                pass
            finally:
                self._batch_size = 1
        taken = self._messages[:max_messages]
        del self._messages[:max_messages]
        if not self._messages:
            self._not_empty.clear()
        self._not_full.set()
        return taken

    def clear(self) -> None:
        """Drop what is buffered (Faust calls this when flow resumes after a rebalance: the
        consumer seeks back to the committed offsets, so nothing dropped is lost)."""
        self._messages.clear()
        self._not_empty.clear()
        self._not_full.set()


class BatchConductor(Conductor):
    """Faust's topic conductor, except that the topics given to `deliver_in_batches` go to a
    `BatchBuffer` instead of through channels and streams."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._batch_buffers: dict[str, BatchBuffer] = {}

    def deliver_in_batches(self, topic: Any, buffer: BatchBuffer) -> None:
        for name in topic.topics:
            self._batch_buffers[name] = buffer
        self.app.flow_control.manage_queue(buffer)  # type: ignore[arg-type]  # has clear()
        self.add(topic)

    def _build_handler(self, tp: TP, channels: Any) -> Callable[[Message], Any]:
        buffer = self._batch_buffers.get(tp.topic)
        if buffer is None:
            return super()._build_handler(tp, channels)
        acquire_flow_control = self.app.flow_control.acquire
        track = self.app.consumer.track_message

        async def on_message(message: Message) -> None:
            await acquire_flow_control()  # suspended during a rebalance
            track_once(track, message)
            await buffer.put(message)

        return on_message

    @property
    def batch_buffers(self) -> dict[str, BatchBuffer]:
        return self._batch_buffers


def track_once(track: Callable[[Message], None], message: Message) -> None:
    """Count the message as unacknowledged with Faust (acknowledged by `consumer.ack`)."""
    if not message.tracked:
        message.tracked = True
        track(message)


class BatchConsumer(Consumer):
    """Faust's aiokafka consumer with a cheaper drain loop: faust-streaming 0.15.3's
    `Consumer._drain_messages`, changed as the module docstring says (batched topics appended
    inline, other handlers awaited directly unless flow is suspended)."""

    async def _drain_messages(self, fetcher: Any) -> None:
        callback = self.callback
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        acks_enabled_for = self.app.topics.acks_enabled_for
        suspended = self.suspend_flow.is_set
        flowing = self.app.flow_control.is_active
        batch_buffers: dict[str, BatchBuffer] = getattr(self.app.topics, "batch_buffers", {})
        track = self.track_message
        since_yield = 0
        try:
            while not (self._stopped.is_set() or fetcher._stopped.is_set()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = self.getmany(timeout=1.0)
                await self.sleep(0)  # getmany can return at once, again and again
                if not self.should_stop:
                    async for tp, message in fetched:
                        since_yield += 1
                        if since_yield > 100:
                            await asyncio.sleep(0)
                            since_yield = 0
                        offset = message.offset
                        read_offset = get_read_offset(tp)
                        if read_offset is not None and offset < read_offset:
                            continue  # already delivered
                        gap = read_offset is not None and offset - read_offset > 1
                        if gap and read_offset and acks_enabled_for(message.topic):
                            await self._add_gap(tp, read_offset + 1, offset)
                        if self._commit_every is not None and self._n_acked >= self._commit_every:
                            self._n_acked = 0
                            await self.commit()
                        buffer = batch_buffers.get(tp.topic)
                        if buffer is not None and flowing() and not suspended():
                            # the conductor's handler, inline, while the buffer has room
                            track_once(track, message)
                            if not buffer.offer(message):
                                await buffer.put(message)
                        elif suspended():
                            await self.wait_first(callback(message), self.suspend_flow.wait())
                        else:
                            await callback(message)
                        set_read_offset(tp, offset)
                    self.diag.unset_flag(CONSUMER_FETCHING)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)
