"""Registry of library adapters, loaded lazily so a missing library is skipped."""

from __future__ import annotations

import importlib

from .base import Adapter, Conn, Handler, Message

#: name -> (module, factory attribute). Order is the order of the tables.
LIBRARIES: dict[str, tuple[str, str]] = {
    "floor": ("benchmarks.libs.floor", "FloorAdapter"),
    "trio_ws": ("benchmarks.libs.trio_ws_lib", "TrioWsAdapter"),
    "trio_ws-defaults": ("benchmarks.libs.trio_ws_lib", "TrioWsDefaultsAdapter"),
    "websockets": ("benchmarks.libs.websockets_trio", "WebsocketsAdapter"),
    "trio-websocket": ("benchmarks.libs.trio_websocket_lib", "TrioWebsocketAdapter"),
}

#: References for the ratio columns.
FLOOR = "floor"
WEBSOCKETS = "websockets"


class LibraryUnavailable(Exception):
    """The library (or its adapter) cannot be imported."""


def load(name: str) -> Adapter:
    """Return the adapter for ``name``; raise LibraryUnavailable if it can't load."""
    try:
        module_name, attr = LIBRARIES[name]
    except KeyError:
        raise LibraryUnavailable(f"unknown library {name!r}") from None
    try:
        module = importlib.import_module(module_name)
        adapter: Adapter = getattr(module, attr)()
        adapter.version()
    except Exception as exc:  # a half-written library may fail in any way
        raise LibraryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    return adapter


__all__ = [
    "FLOOR",
    "LIBRARIES",
    "WEBSOCKETS",
    "Adapter",
    "Conn",
    "Handler",
    "LibraryUnavailable",
    "Message",
    "load",
]
