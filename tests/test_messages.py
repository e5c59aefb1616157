"""The receive buffer: FIFO order, high- and low-water marks, end and release."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from trio_ws._messages import MessageQueue


class Calls:
    """Records the pause and resume callbacks."""

    def __init__(self) -> None:
        self.log: list[str] = []

    def queue(self, max_queue: int | None) -> MessageQueue:
        return MessageQueue(
            max_queue,
            on_pause=lambda: self.log.append("pause"),
            on_resume=lambda: self.log.append("resume"),
        )


@pytest.mark.parametrize("max_queue", [0, -1])
def test_max_queue_must_be_positive(max_queue: int) -> None:
    with pytest.raises(ValueError, match="max_queue must be at least 1 or None"):
        MessageQueue(max_queue)


def test_fifo() -> None:
    queue = MessageQueue(None)
    queue.put(["a", b"b"])
    queue.put(["c"])
    assert len(queue) == 3
    assert [queue.get_nowait() for _ in range(3)] == ["a", b"b", "c"]
    with pytest.raises(trio.WouldBlock):
        queue.get_nowait()


def test_high_and_low_water_marks() -> None:
    calls = Calls()
    queue = calls.queue(8)  # low-water mark: 8 // 4 == 2
    queue.put(["m"] * 7)
    assert not queue.paused
    assert calls.log == []
    queue.put(["m"])  # the 8th message reaches the high-water mark
    assert queue.paused
    assert calls.log == ["pause"]
    queue.put(["m"] * 3)  # already paused: no second callback
    assert calls.log == ["pause"]
    for _ in range(8):  # 11 -> 3: still above the low-water mark
        queue.get_nowait()
    assert queue.paused
    queue.get_nowait()  # 2 left: at the low-water mark, reading resumes
    assert not queue.paused
    assert calls.log == ["pause", "resume"]
    queue.get_nowait()
    queue.get_nowait()
    assert calls.log == ["pause", "resume"]


def test_max_queue_one_resumes_when_empty() -> None:
    calls = Calls()
    queue = calls.queue(1)  # low-water mark 0
    queue.put(["a"])
    assert queue.paused
    assert queue.get_nowait() == "a"
    assert not queue.paused
    assert calls.log == ["pause", "resume"]


def test_no_limit_never_pauses() -> None:
    calls = Calls()
    queue = calls.queue(None)
    queue.put(["m"] * 10_000)
    assert not queue.paused
    assert calls.log == []


def test_callbacks_are_optional() -> None:
    queue = MessageQueue(1)
    queue.put(["a"])
    assert queue.paused
    queue.get_nowait()
    assert not queue.paused


def test_release_resumes_and_stops_pausing() -> None:
    calls = Calls()
    queue = calls.queue(2)
    queue.put(["a", "b"])
    assert queue.paused
    queue.release()
    assert not queue.paused
    assert calls.log == ["pause", "resume"]
    queue.put(["m"] * 100)
    assert not queue.paused
    queue.release()  # not paused: nothing to resume
    assert calls.log == ["pause", "resume"]


def test_end_resumes_and_keeps_messages() -> None:
    calls = Calls()
    queue = calls.queue(1)
    queue.put(["a"])
    queue.end()
    assert queue.ended
    assert not queue.paused
    assert calls.log == ["pause", "resume"]
    assert queue.get_nowait() == "a"  # messages put before the end stay
    queue.end()  # again, and not paused: nothing to resume
    assert calls.log == ["pause", "resume"]


async def test_wait_readable_woken_by_put() -> None:
    queue = MessageQueue(None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_readable)
        await trio.testing.wait_all_tasks_blocked()
        queue.put(["a"])
    assert queue.get_nowait() == "a"


async def test_wait_readable_woken_by_end() -> None:
    queue = MessageQueue(None)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_readable)
        await trio.testing.wait_all_tasks_blocked()
        queue.end()


async def test_wait_readable_cancelled_takes_nothing() -> None:
    queue = MessageQueue(None)
    with trio.CancelScope() as scope:
        scope.cancel()
        await queue.wait_readable()
    assert scope.cancelled_caught
    queue.put(["a"])
    assert queue.get_nowait() == "a"


async def test_wait_writable() -> None:
    queue = MessageQueue(1)
    with trio.testing.assert_no_checkpoints():
        await queue.wait_writable()  # not paused: returns at once
    queue.put(["a"])
    woken = []

    async def writer() -> None:
        await queue.wait_writable()
        woken.append(True)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(writer)
        await trio.testing.wait_all_tasks_blocked()
        assert woken == []
        queue.get_nowait()
    assert woken == [True]


@pytest.mark.parametrize("stop", ["end", "release"])
async def test_wait_writable_woken_by_end_and_release(stop: str) -> None:
    queue = MessageQueue(1)
    queue.put(["a"])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(queue.wait_writable)
        await trio.testing.wait_all_tasks_blocked()
        getattr(queue, stop)()
    assert len(queue) == 1
