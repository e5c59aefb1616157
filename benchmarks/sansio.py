"""The sans-I/O cost of a message: no sockets, no tasks, one process.

Usage::

    python -m benchmarks.sansio [TREE]

For 32-byte text, 64-byte, 16 KiB and 1 MiB binary messages: a client
``Protocol`` makes the frames (``send_message`` and ``data_to_send``), a
server ``Protocol`` takes them in 64 KiB reads (``receive_data`` and
``take_messages``). Prints the CPU µs per message of each side, best of
five rounds. ``TREE`` is a directory holding a ``trio_ws`` package to
measure instead of the installed one (a copy of another commit, say).
About 1.5 µs of each figure is the measurement's own timer calls and copy.
"""

from __future__ import annotations

import os
import sys
import time

READ_SIZE = 65536
CASES = ((32, True), (64, False), (16384, False), (1 << 20, False))


def measure(size: int, *, text: bool) -> tuple[float, float]:
    """CPU µs per message: (send side, receive side), best of five rounds."""
    from trio_ws._protocol import Protocol  # imported once sys.path is set

    payload: str | bytes = ("x" * size) if text else os.urandom(size)
    client, server = Protocol(client=True), Protocol(client=False)
    count = max(20, min(20000, 20_000_000 // max(size, 1000)))

    def rounds(n: int) -> tuple[float, float]:
        sending = receiving = 0.0
        for _ in range(n):
            t0 = time.process_time()
            client.send_message(payload)
            data = client.data_to_send()
            t1 = time.process_time()
            view = memoryview(data)
            for i in range(0, len(data), READ_SIZE):
                server.receive_data(bytes(view[i : i + READ_SIZE]))
            messages = server.take_messages()
            t2 = time.process_time()
            assert len(messages) == 1
            assert len(messages[0]) == size
            sending += t1 - t0
            receiving += t2 - t1
        return sending / n * 1e6, receiving / n * 1e6

    rounds(max(2, count // 10))  # warm up
    return min((rounds(count) for _ in range(5)), key=sum)


def main() -> None:
    if len(sys.argv) > 1:
        sys.path.insert(0, sys.argv[1])
    import trio_ws  # imported once sys.path is set

    print(f"trio_ws from {os.path.dirname(trio_ws.__file__)}")
    for size, text in CASES:
        send, receive = measure(size, text=text)
        kind = "text" if text else "binary"
        print(
            f"{size:>8} B {kind:<6}  send {send:9.2f} µs  receive {receive:9.2f} µs"
            f"  total {send + receive:9.2f} µs"
        )


if __name__ == "__main__":
    main()
