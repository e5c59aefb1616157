"""Every program in examples/ runs, prints what the docs say, and is in the docs.

Each example has an ``async def main()`` that starts what it needs on
127.0.0.1, port 0, and returns; these tests run it under ``fail_after`` and
compare its output line by line. The tutorial's client and server, meant to
run in two terminals, are run against each other instead; the testing
how-to's tests run under ``autojump_clock``, as pytest-trio would run them.
"""

from __future__ import annotations

import functools
import gc
import importlib.util
import re
import sys
import traceback
import types
from pathlib import Path

import pytest
import trio
import trio.testing

import trio_ws
from trio_ws.testing import open_connection_pair

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
TIMEOUT = 20

#: The output of each example's main(), line by line.
OUTPUT: dict[str, list[str]] = {
    "quickstart": ["< Hello, trio_ws!"],
    "many_connections": [
        "20",
        "failed: all attempts to connect to 127.0.0.1:1 failed",
    ],
    "reconnect": [
        "server: 503 to attempt 1",
        (
            "connection lost (received 1012 (service restart); "
            "then sent 1012 (service restart)); reconnecting"
        ),
        "echo: hello",
    ],
    "timeouts": ["timed out: True", "then got: first", "too slow", "then got: second"],
    "lifecycle": ["got the echo and at least 3 ticks", "handler done, ticker stopped"],
    "broadcast": [
        "alice got ['news 0', 'news 1', 'news 2']",
        "bob got ['news 0', 'news 1', 'news 2']",
    ],
    "auth": [
        "server rejected WebSocket connection: HTTP 401",
        'Bearer realm="trio_ws example"',
        "welcome",
        "HTTP/1.1 200 OK",
    ],
    "basic_auth": [
        "hello alice",
        "server rejected WebSocket connection: HTTP 401",
        'Basic realm="example", charset="UTF-8"',
        "Invalid credentials.",
    ],
    "limits": [
        "received 500 characters",
        "sent 1009 (message too big) message over 1000 bytes; no close frame received",
        "PayloadTooBig: message over 1000 bytes (at least 1001 bytes)",
    ],
    "tls": ["< secret", "untrusted: unable to get local issuer certificate"],
    "compression": [
        "default: permessage-deflate; client_max_window_bits=15",
        "client off: no compression",
        "server off: no compression",
    ],
    "proxy": ["you are 203.0.113.7", "you are 127.0.0.1"],
    "stop_server": [
        "client: received 1001 (going away); then sent 1001 (going away)",
        "handler finished, close code 1001",
        "server stopped",
    ],
    "custom_connection": ["[lobby] hi"],
    "catch_closed": [
        "bye: closed normally",
        (
            "dance: received 4001 (private use) unknown command; "
            "then sent 4001 (private use) unknown command"
        ),
        "dance: code=4001 reason='unknown command'",
        (
            "dance: rcvd=4001 (private use) unknown command "
            "sent=4001 (private use) unknown command"
        ),
    ],
    "keepalive": [
        "latency before any ping: 0.0",
        "heartbeat measured latency: True",
        "explicit ping round trip under 1 s: True",
        "without heartbeat: OPEN 0.0",
    ],
    "faq_errors": [
        "drop: ConnectionClosedError: no close frame received or sent",
        "drop: code 1006, cause EOFError('connection closed without a close frame')",
        (
            "mute: ConnectionClosedError: sent 1011 (internal error) "
            "keepalive ping timeout; no close frame received"
        ),
        "mute: code 1011, cause None",
    ],
    "migrate_before": ["rejected: 401", "HELLO", "closed: 1000 done"],
    "migrate_after": ["rejected: 401", "HELLO", "closed: 1000 done"],
}
#: Examples with a test of their own below.
SPECIAL = {"client", "server", "test_ticker", "logging_setup"}


def load(name: str) -> types.ModuleType:
    """Import examples/NAME.py (as examples.NAME, so that they can import each other)."""
    qualified = f"examples.{name}"
    if qualified in sys.modules:
        return sys.modules[qualified]
    spec = importlib.util.spec_from_file_location(qualified, EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[qualified] = module
    spec.loader.exec_module(module)
    return module


def example_names() -> set[str]:
    return {path.stem for path in EXAMPLES.glob("*.py")}


def docs_text() -> str:
    return "\n".join(path.read_text() for path in sorted(DOCS.rglob("*.rst")))


def with_marks(name: str) -> object:
    if name == "migrate_before":
        # trio-websocket leaves the socket of a rejected client unclosed;
        # migrate_after shows trio_ws does not.
        return pytest.param(
            name,
            marks=pytest.mark.filterwarnings(
                "ignore::pytest.PytestUnraisableExceptionWarning",
                "ignore::ResourceWarning",
            ),
        )
    return name


@pytest.mark.parametrize("name", [with_marks(name) for name in sorted(OUTPUT)])
async def test_example_output(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = load(name)
    with trio.fail_after(TIMEOUT):
        await module.main()
    gc.collect()  # report unclosed resources here, not in a later test
    assert capsys.readouterr().out.splitlines() == OUTPUT[name]


def test_every_example_is_tested() -> None:
    assert example_names() == set(OUTPUT) | SPECIAL


def test_every_example_is_in_the_docs() -> None:
    included = set(re.findall(r"literalinclude:: [./]*examples/(\w+)\.py", docs_text()))
    assert example_names() - included == set()


def test_every_included_file_exists() -> None:
    for page in DOCS.rglob("*.rst"):
        for target in re.findall(r"literalinclude:: (\S+)", page.read_text()):
            assert (page.parent / target).resolve().is_file(), f"{page}: {target}"


# --- the tutorial: client.py and server.py, meant for two terminals ----------


async def test_tutorial_client_and_server(capsys: pytest.CaptureFixture[str]) -> None:
    server, client = load("server"), load("client")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            running: trio_ws.Server = await nursery.start(
                functools.partial(trio_ws.serve, server.hello, 0, host="127.0.0.1")
            )
            await client.hello(f"ws://localhost:{running.port}", "Alice")
            await running.aclose()
    # Client and server print from different tasks: compare each side's lines.
    lines = capsys.readouterr().out.splitlines()
    assert [line for line in lines if line in {">>> Alice", "<<< Hello Alice!"}] == [
        ">>> Alice",
        "<<< Hello Alice!",
    ]
    assert [line for line in lines if line in {"<<< Alice", ">>> Hello Alice!"}] == [
        "<<< Alice",
        ">>> Hello Alice!",
    ]
    assert len(lines) == 4


async def test_tutorial_server_rejects_binary_names() -> None:
    server = load("server")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            running: trio_ws.Server = await nursery.start(
                functools.partial(trio_ws.serve, server.hello, 0, host="127.0.0.1")
            )
            async with trio_ws.connect(f"ws://127.0.0.1:{running.port}") as ws:
                await ws.send(b"Alice")
                with pytest.raises(trio_ws.ConnectionClosedError) as closed:
                    await ws.recv()
            assert closed.value.rcvd == trio_ws.Close(1003, "send your name as text")
            await running.aclose()


async def test_tutorial_mains_use_port_8765(monkeypatch: pytest.MonkeyPatch) -> None:
    server, client = load("server"), load("client")
    calls: list[tuple[object, ...]] = []

    async def fake_serve(handler: object, port: int) -> None:
        calls.append(("serve", handler, port))

    async def fake_hello(uri: str, name: str) -> None:
        calls.append(("hello", uri, name))

    monkeypatch.setattr(trio_ws, "serve", fake_serve)
    monkeypatch.setattr(client, "hello", fake_hello)
    monkeypatch.setattr(sys, "argv", ["client.py", "Bob"])
    await server.main()
    await client.main()
    monkeypatch.setattr(sys, "argv", ["client.py"])
    await client.main()
    assert calls == [
        ("serve", server.hello, 8765),
        ("hello", "ws://localhost:8765", "Bob"),
        ("hello", "ws://localhost:8765", "world"),
    ]


# --- the testing how-to: tests of an application ---------------------------


@pytest.mark.parametrize(
    "test",
    [
        "test_ticks_every_five_seconds",
        "test_rejects_other_commands",
        "test_a_client_that_stops_reading_gets_ticks_late",
    ],
)
async def test_testing_howto_tests_pass(
    test: str, autojump_clock: trio.testing.MockClock
) -> None:
    module = load("test_ticker")
    tests = {name for name in vars(module) if name.startswith("test_")}
    assert test in tests
    await getattr(module, test)(autojump_clock)


def test_testing_howto_tests_are_all_run() -> None:
    module = load("test_ticker")
    tests = {name for name in vars(module) if name.startswith("test_")}
    assert tests == {
        "test_ticks_every_five_seconds",
        "test_rejects_other_commands",
        "test_a_client_that_stops_reading_gets_ticks_late",
        "test_ticker_over_a_real_socket",
    }


async def test_testing_howto_end_to_end_test_passes() -> None:
    # Real sockets: no autojump_clock here.
    await load("test_ticker").test_ticker_over_a_real_socket()


# --- logging: the handler's traceback goes to the log ------------------------


async def test_logging_example(capsys: pytest.CaptureFixture[str]) -> None:
    module = load("logging_setup")
    with trio.fail_after(TIMEOUT):
        await module.main()
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ERROR trio_ws.server: [chat] connection handler failed"
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-2] == "RuntimeError: boom"
    assert lines[-1] == (
        "client: received 1011 (internal error); then sent 1011 (internal error)"
    )


# --- the FAQ quotes what trio_ws really prints ------------------------------


async def raise_from_bare_server(behaviour: str, keepalive: float) -> BaseException:
    faq = load("faq_errors")
    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                trio.serve_tcp, functools.partial(faq.bare_server, behaviour), 0
            )
            port = listeners[0].socket.getsockname()[1]
            with pytest.raises(trio_ws.ConnectionClosedError) as closed:
                await faq.receive(f"ws://localhost:{port}", keepalive, keepalive)
            nursery.cancel_scope.cancel()
    return closed.value


@pytest.mark.parametrize(
    ("behaviour", "keepalive", "cause"),
    [
        ("drop", 20, "EOFError: connection closed without a close frame"),
        ("mute", 0.1, None),
    ],
)
async def test_faq_quotes_real_tracebacks(
    behaviour: str, keepalive: float, cause: str | None
) -> None:
    exc = await raise_from_bare_server(behaviour, keepalive)
    printed = "".join(traceback.format_exception(exc))
    faq = (DOCS / "faq" / "index.rst").read_text()
    # The last line of the traceback, as Python prints it, is in the FAQ...
    last = printed.splitlines()[-1]
    assert last.startswith("trio_ws.ConnectionClosedError: ")
    assert f"   {last}\n" in faq
    # ...with the example's own frame...
    [frame] = [
        line.replace(str(EXAMPLES), "examples")
        for line in printed.splitlines()
        if "faq_errors.py" in line
    ]
    assert f"   {frame}\n" in faq
    # ...and its cause, when there is one.
    if cause is None:
        assert exc.__cause__ is None
    else:
        assert printed.startswith(
            cause + "\n\nThe above exception was the direct cause"
        )
        assert f"   {cause}\n" in faq


def test_readme_links_exist() -> None:
    readme = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\(((?!https?:)[^)#]+)\)", readme)
    assert "docs/intro/tutorial.rst" in targets
    for target in targets:
        assert (ROOT / target).exists(), target


def test_examples_page_lists_every_example() -> None:
    page = (DOCS / "intro" / "examples.rst").read_text()
    listed = set(re.findall(r"``(\w+)\.py``", page))
    assert listed == example_names()


async def test_faq_quotes_the_busy_recv_error(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_connection_pair() as pair, trio.open_nursery() as nursery:
        nursery.start_soon(pair.client.recv)
        await trio.testing.wait_all_tasks_blocked()
        with pytest.raises(trio.BusyResourceError) as busy:
            await pair.client.recv()
        nursery.cancel_scope.cancel()
    last = traceback.format_exception_only(busy.value)[-1].strip()
    assert last == (
        "trio.BusyResourceError: another task is already receiving on this connection"
    )
    assert f"   {last}\n" in (DOCS / "faq" / "index.rst").read_text()


async def test_faq_quotes_the_answer_to_a_browser() -> None:
    async def unused(ws: trio_ws.ServerConnection) -> None:
        raise AssertionError("a plain GET never reaches the handler")

    with trio.fail_after(TIMEOUT):
        async with trio.open_nursery() as nursery:
            server: trio_ws.Server = await nursery.start(
                functools.partial(trio_ws.serve, unused, 0, host="127.0.0.1")
            )
            stream = await trio.open_tcp_stream("127.0.0.1", server.port or 0)
            async with stream:
                await stream.send_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                response = b""
                while chunk := await stream.receive_some():
                    response += chunk
            nursery.cancel_scope.cancel()
    head, _, body = response.decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.1 426 Upgrade Required\r\n")
    faq = " ".join((DOCS / "faq" / "index.rst").read_text().split())
    for sentence in body.split("\n"):
        if sentence:
            assert f"``{sentence}``" in faq, sentence
