"""The public surface: ``__all__``, ``__module__`` and the API reference agree.

Public means listed in ``trio_ws.__all__`` (or in the ``__all__`` of a public
submodule such as ``trio_ws.testing``) and documented under ``docs/reference/``.
These tests read the reference pages' reStructuredText, so that a name added
to ``__all__`` without documentation, or documented without being exported,
fails here instead of surprising users.
"""

from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
import re
import types
from pathlib import Path

import pytest

import trio_ws

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"

# `.. autoclass:: Name`, `.. py:function:: Name`, ... at any indentation.
_DIRECTIVE = re.compile(
    r"^(?P<indent> *)\.\. (?:py:)?(?P<kind>auto\w+|function|class|exception|data|"
    r"attribute|method|property|type|currentmodule|module)::\s*(?P<name>\S+)",
    re.MULTILINE,
)
_OPTION = re.compile(r"^ +:(?P<option>[\w-]+):", re.MULTILINE)
# Kinds that document a name of the current module (not a member).
_TOP_KINDS = {
    "autofunction",
    "autoclass",
    "autoexception",
    "autodata",
    "function",
    "class",
    "exception",
    "data",
}
_MEMBER_KINDS = {
    "automethod",
    "autoattribute",
    "autoproperty",
    "method",
    "attribute",
    "property",
}


def public_modules() -> list[types.ModuleType]:
    """trio_ws and its public submodules (trio_ws.testing, ...)."""
    return [trio_ws] + [
        importlib.import_module(f"trio_ws.{info.name}")
        for info in pkgutil.iter_modules(trio_ws.__path__)
        if not info.name.startswith("_")
    ]


def exported() -> dict[str, object]:
    """Every public name, fully qualified, with its object."""
    names: dict[str, object] = {}
    for module in public_modules():
        for name in module.__all__:
            if name != "__version__":
                names[f"{module.__name__}.{name}"] = getattr(module, name)
    return names


class Reference:
    """What docs/reference/*.rst documents, from the directives it uses."""

    def __init__(self) -> None:
        #: Fully qualified top-level names, with the page documenting them.
        self.names: dict[str, str] = {}
        #: Members documented inside a class directive, by class name.
        self.members: dict[str, set[str]] = {}
        #: Classes documented with ``:members:`` (autodoc lists them all).
        self.all_members: set[str] = set()
        #: Names documented as type aliases (``py:type``): not importable.
        self.type_aliases: set[str] = set()
        for page in sorted(REFERENCE.glob("*.rst")):
            self._read(page)

    def _read(self, page: Path) -> None:
        text = page.read_text(encoding="utf-8")
        module = "trio_ws"
        current: str | None = None
        matches = list(_DIRECTIVE.finditer(text))
        for index, match in enumerate(matches):
            kind, name = match["kind"], match["name"]
            indented = bool(match["indent"])
            if kind in {"currentmodule", "module"}:
                module = name
                continue
            if kind == "type":
                self.type_aliases.add(f"{module}.{name}")
                continue
            if kind in _TOP_KINDS and not indented:
                qualified = name if name.startswith("trio_ws") else f"{module}.{name}"
                self.names[qualified] = page.name
                current = qualified
                self.members.setdefault(qualified, set())
                # The directive's options run until the next directive.
                end = matches[index + 1].start() if index + 1 < len(matches) else None
                options = {
                    m["option"] for m in _OPTION.finditer(text[match.end() : end])
                }
                if "members" in options:
                    self.all_members.add(qualified)
            elif kind in _MEMBER_KINDS and indented and current is not None:
                self.members[current].add(name.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def reference() -> Reference:
    return Reference()


def test_all_names_exist() -> None:
    for module in public_modules():
        assert len(set(module.__all__)) == len(module.__all__), module.__name__
        for name in module.__all__:
            assert hasattr(module, name), f"{module.__name__}.{name}"


def test_version_is_exported() -> None:
    assert "__version__" in trio_ws.__all__
    assert re.fullmatch(r"\d+\.\d+(\.\d+)?(\w+\d*)?", trio_ws.__version__)


def test_public_names_claim_their_public_module() -> None:
    # Reprs, tracebacks and the docs say trio_ws.Connection, not
    # trio_ws._connection.Connection.
    for module in public_modules():
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert obj.__module__ == module.__name__, f"{name}: {obj.__module__}"
    assert repr(trio_ws.ConnectionClosedOK) == "<class 'trio_ws.ConnectionClosedOK'>"


def test_no_public_name_is_left_out_of_all() -> None:
    for module in public_modules():
        for name, obj in vars(module).items():
            if name.startswith("_") or isinstance(obj, types.ModuleType):
                continue
            if getattr(obj, "__module__", "").startswith("trio_ws"):
                assert name in module.__all__, f"{module.__name__}.{name}"


def test_every_export_is_documented(reference: Reference) -> None:
    missing = sorted(set(exported()) - set(reference.names))
    assert not missing, f"exported but not in docs/reference/: {missing}"


def test_every_documented_name_is_exported(reference: Reference) -> None:
    extra = sorted(set(reference.names) - set(exported()))
    assert not extra, f"documented in docs/reference/ but not exported: {extra}"


def test_type_aliases_in_the_reference_are_real(reference: Reference) -> None:
    # Documented for reading signatures; each must still exist somewhere.
    private = [
        importlib.import_module(f"trio_ws.{info.name}")
        for info in pkgutil.iter_modules(trio_ws.__path__)
        if info.name.startswith("_") and info.name != "__main__"
    ]
    for alias in reference.type_aliases:
        name = alias.rsplit(".", 1)[-1]
        assert any(hasattr(module, name) for module in private), alias


def _own_public_members(cls: type) -> set[str]:
    """Methods and properties a class defines itself, the ones users call."""
    members = set()
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (enum.Enum, int, str, bool)):
            continue  # enum members and class constants: :members: or prose
        if callable(value) or isinstance(value, (property, staticmethod, classmethod)):
            members.add(name)
    return members


def test_every_public_method_is_documented(reference: Reference) -> None:
    # Reference pages list members one by one, in reading order; a method
    # added to a class must be added there too.
    undocumented = []
    for qualified, obj in exported().items():
        if not inspect.isclass(obj) or qualified in reference.all_members:
            continue
        docstring = inspect.getdoc(obj) or ""
        for member in sorted(_own_public_members(obj)):
            if member in reference.members.get(qualified, set()):
                continue
            # Napoleon turns an "Attributes:" entry into a documented attribute.
            if re.search(rf"^\s+{member}:", docstring, re.MULTILINE):
                continue
            undocumented.append(f"{qualified}.{member}")
    assert not undocumented, f"not listed in docs/reference/: {undocumented}"


def test_reference_reader_sees_known_entries(reference: Reference) -> None:
    # Guards the parser itself: these are documented today.
    assert reference.names["trio_ws.connect"] == "client.rst"
    assert reference.names["trio_ws.ConnectionClosed"] == "exceptions.rst"
    assert {"send", "recv", "aclose"} <= reference.members["trio_ws.Connection"]
    assert "trio_ws.State" in reference.all_members
