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

#: ``trio_ws@LABEL``: trio_ws (comparable settings) imported from another
#: source tree, so that a branch and main run side by side in one report.
VARIANT_OF = "trio_ws"


class LibraryUnavailable(Exception):
    """The library (or its adapter) cannot be imported."""


def split_variant(name: str) -> tuple[str, str | None]:
    """``"trio_ws@fast"`` -> ``("trio_ws", "fast")``; other names -> ``(name, None)``."""
    base, sep, label = name.partition("@")
    return (base, label) if sep else (name, None)


def load(name: str) -> Adapter:
    """Return the adapter for ``name``; raise LibraryUnavailable if it can't load.

    A variant (``trio_ws@LABEL``) loads trio_ws from whatever is first on
    ``sys.path``: the child processes put the variant's tree there first.
    """
    base, label = split_variant(name)
    try:
        module_name, attr = LIBRARIES[base]
    except KeyError:
        raise LibraryUnavailable(f"unknown library {name!r}") from None
    if label is not None and base != VARIANT_OF:
        raise LibraryUnavailable(f"only {VARIANT_OF} has variants, not {base!r}")
    try:
        module = importlib.import_module(module_name)
        adapter: Adapter = getattr(module, attr)()
        adapter.version()
    except Exception as exc:  # a half-written library may fail in any way
        raise LibraryUnavailable(f"{type(exc).__name__}: {exc}") from exc
    if label is not None:
        adapter.name = name
    return adapter


__all__ = [
    "FLOOR",
    "LIBRARIES",
    "VARIANT_OF",
    "WEBSOCKETS",
    "Adapter",
    "Conn",
    "Handler",
    "LibraryUnavailable",
    "Message",
    "load",
    "split_variant",
]
