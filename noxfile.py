"""Development tasks for trio_ws: ``nox -l`` lists them, ``nox -s NAME`` runs one.

Every session installs what it needs from the PEP 735 dependency groups in
pyproject.toml, with a pip recent enough to read them (``pip >= 25.1``).
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
HERE = Path(__file__).parent

nox.needs_version = ">= 2025.2.9"
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True
# The tests session runs on every supported Python found on this machine and
# skips the others, unless CI asks for all of them.
nox.options.error_on_missing_interpreters = "CI" in os.environ
nox.options.sessions = ["lint", "typecheck", "tests", "coverage", "docs"]


def install(session: nox.Session, *groups: str, editable: bool = True) -> None:
    """Install the project plus the given dependency groups."""
    session.install("--upgrade", "pip >= 25.1")
    group_args = [arg for group in groups for arg in ("--group", group)]
    project = ["-e", "."] if editable else ["."]
    session.install(*group_args, *project)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite with coverage (pass pytest arguments after ``--``)."""
    install(session, "test")
    # One data file per interpreter; the coverage session combines them.
    coverage_file = HERE / f".coverage.{session.python}"
    session.run(
        "python",
        "-m",
        "pytest",
        *session.posargs,
        env={"COVERAGE_FILE": str(coverage_file)},
    )


@nox.session
def coverage(session: nox.Session) -> None:
    """Combine the coverage data of every tests run and report on it."""
    session.install("coverage >= 7.10.6")
    if not list(HERE.glob(".coverage.*")):
        session.error("no coverage data: run `nox -s tests` first")
    session.run("coverage", "combine", "--keep")
    session.run("coverage", "report", "--fail-under=95")
    session.run("coverage", "html", "--skip-covered")


@nox.session
def lint(session: nox.Session) -> None:
    """Check formatting and lint with ruff."""
    session.install("--upgrade", "pip >= 25.1")
    session.install("--group", "lint")
    session.run("ruff", "format", "--check", ".")
    session.run("ruff", "check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """Type-check with mypy, then check the public API's type completeness."""
    install(session, "typecheck", editable=False)
    session.run("mypy")
    session.run(
        "pyright",
        "--verifytypes",
        "trio_ws",
        "--ignoreexternal",
        env={"PYRIGHT_PYTHON_IGNORE_WARNINGS": "1"},
    )


@nox.session
def docs(session: nox.Session) -> None:
    """Build the HTML documentation; warnings and broken references are errors."""
    install(session, "docs")
    session.run(
        "sphinx-build",
        "-W",
        "-n",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
    )


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Run the benchmarks in benchmarks/ (``python -m benchmarks``)."""
    install(session, "test")
    session.run("python", "-m", "benchmarks", *session.posargs)
