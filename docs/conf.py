"""Sphinx configuration for the trio_ws documentation.

Build with ``nox -s docs`` or ``sphinx-build -W -n -b html docs docs/_build/html``:
warnings are errors and every cross-reference must resolve (``nitpicky``).

Cross-references to Python, trio and wsproto go through intersphinx, which reads
the inventories shipped in ``docs/_inventories/`` instead of downloading them, so
the build needs no network and gives the same result everywhere. The links
still point at the projects' online documentation. To refresh an inventory,
replace its file with the ``objects.inv`` published at the URL below (or built
from that project's sources); see ``docs/_inventories/README.rst``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# Document the checkout, even when an older trio_ws is installed.
sys.path.insert(0, str(ROOT))

from trio_ws._version import __version__  # noqa: E402

# -- Project -----------------------------------------------------------------

project = "trio_ws"
copyright = "the trio_ws authors"
version = ".".join(__version__.split(".")[:2])
release = __version__

# -- General -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.napoleon",
    "sphinxcontrib_trio",
]

exclude_patterns = ["_build", "_inventories"]
root_doc = "index"
nitpicky = True
# Kept short on purpose: an entry here is a link readers do not get.
nitpick_ignore: list[tuple[str, str]] = []

# -- autodoc and napoleon ------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_preserve_defaults = True
autodoc_default_options: dict[str, bool | str] = {}
# Names that autodoc cannot evaluate in annotations: imported only for type
# checkers, or private aliases spelled as strings. Each maps to what the
# reference documents (the aliases under "Type aliases" in
# reference/datastructures.rst), so that signatures show linked types.
autodoc_type_aliases = {
    "Connection": "trio_ws.Connection",
    "ServerConnection": "trio_ws.ServerConnection",
    "Request": "trio_ws.Request",
    "Response": "trio_ws.Response",
    "Data": "trio_ws.Data",
    "LoggerLike": "trio_ws.LoggerLike",
    "HeadersLike": "trio_ws.HeadersLike",
    "Handler": "trio_ws.Handler",
    "ProcessRequest": "trio_ws.ProcessRequest",
    "_ProcessRequest": "trio_ws.ProcessRequest",
    "ProcessResponse": "trio_ws.ProcessResponse",
    "RouteHandler": "trio_ws.RouteHandler",
    "CheckCredentials": "trio_ws.CheckCredentials",
    "AuthProcessRequest": "trio_ws.ProcessRequest",
}
python_use_unqualified_type_names = True

napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# trio-style extra sections in docstrings.
napoleon_custom_sections = [
    ("Cancellation", "notes_style"),
    ("Resource handling", "notes_style"),
]

# -- intersphinx (offline: local inventories, online links) --------------------

INVENTORIES = DOCS / "_inventories"
intersphinx_mapping = {
    "python": ("https://docs.python.org/3", str(INVENTORIES / "python.inv")),
    "trio": ("https://trio.readthedocs.io/en/stable", str(INVENTORIES / "trio.inv")),
    "wsproto": (
        "https://wsproto.readthedocs.io/en/stable",
        str(INVENTORIES / "wsproto.inv"),
    ),
}
intersphinx_timeout = 5

# -- HTML ----------------------------------------------------------------------

html_theme = "furo"
html_title = f"trio_ws {release}"
html_static_path: list[str] = []


# -- Public names defined in private modules -----------------------------------
#
# trio_ws/__init__.py sets ``__module__ = "trio_ws"`` on every public name, so
# autodoc looks for ``#:`` attribute comments (``self.latency = ...  #: ...``)
# in trio_ws/__init__.py, where there are none. Merge the comments found in
# the private modules into that module's analysis, so that
# ``.. autoattribute::`` finds instance attributes under their public names.


def _merge_private_attribute_docs(app: object) -> None:
    import pkgutil

    from sphinx.errors import PycodeError
    from sphinx.pycode import ModuleAnalyzer

    import trio_ws

    public = ModuleAnalyzer.for_module("trio_ws")
    public.analyze()
    for info in pkgutil.iter_modules(trio_ws.__path__):
        if not info.name.startswith("_") or info.name == "__main__":
            continue
        try:
            private = ModuleAnalyzer.for_module(f"trio_ws.{info.name}")
        except PycodeError:  # compiled: the optional trio_ws._speedups
            continue
        private.analyze()
        for key, comment in private.attr_docs.items():
            public.attr_docs.setdefault(key, comment)
        for key, order in private.tagorder.items():
            public.tagorder.setdefault(key, order)


# -- Types of functions and methods ---------------------------------------------
#
# sphinxcontrib_trio replaces autodoc's function and method documenters (to
# show "async", "async with"...), and with Sphinx 9 its documenters no longer
# record type hints for ``autodoc_typehints = "description"``: parameters
# would lose their types. Record them from the docstring event instead, with
# the same helper autodoc uses.


def _record_callable_typehints(
    app: object,
    what: str,
    name: str,
    obj: object,
    options: object,
    lines: list[str],
) -> None:
    from sphinx.ext.autodoc.typehints import record_typehints

    if what in {"function", "method"} and callable(obj):
        record_typehints(app, what, name, obj, options, "", "")  # type: ignore[arg-type]
        # An alias nested in a union or a subscript reads as
        # "TypeAliasForwardRef('trio_ws.Data')": keep the name only.
        recorded = app.env.current_document.autodoc_annotations.get(name, {})  # type: ignore[attr-defined]
        for key, value in recorded.items():
            recorded[key] = re.sub(r"TypeAliasForwardRef\('([^']+)'\)", r"\1", value)


def _resolve_private_paths(
    app: object, env: object, node: object, contnode: object
) -> object:
    """Resolve names that annotations spell privately by their public names.

    ``trio_ws._module.Name`` is ``trio_ws.Name``; ``ssl_module.SSLContext``
    (modules importing ``ssl as ssl_module`` beside an ``ssl`` parameter) is
    ``ssl.SSLContext``.
    """
    target = node["reftarget"]  # type: ignore[index]
    if node.get("refdomain") != "py":  # type: ignore[attr-defined]
        return None
    if target.startswith("trio_ws._"):
        public = "trio_ws." + target.rsplit(".", 1)[-1]
    elif target.startswith("ssl_module."):
        public = "ssl." + target.removeprefix("ssl_module.")
    else:
        return None
    domain = env.domains["py"]  # type: ignore[attr-defined]
    found = domain.resolve_xref(
        env,
        node["refdoc"],
        app.builder,
        node["reftype"],
        public,
        node,
        contnode,  # type: ignore[attr-defined,index]
    )
    if found is not None:
        return found
    # Not documented here: maybe in Python's or trio's docs.
    from sphinx.ext.intersphinx import missing_reference

    public_node = node.deepcopy()  # type: ignore[attr-defined]
    public_node["reftarget"] = public
    return missing_reference(app, env, public_node, contnode)  # type: ignore[arg-type]


def setup(app: object) -> None:
    app.connect("builder-inited", _merge_private_attribute_docs)  # type: ignore[attr-defined]
    app.connect("autodoc-process-docstring", _record_callable_typehints)  # type: ignore[attr-defined]
    app.connect("missing-reference", _resolve_private_paths)  # type: ignore[attr-defined]
