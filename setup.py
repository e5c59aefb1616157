"""The optional C accelerator; every other setting is in pyproject.toml.

setuptools builds ``trio_ws._speedups`` (masking, and building and parsing
whole frames, in C) when a C compiler is available. ``optional=True`` lets
the installation go on when the build fails: trio_ws then does the same in
pure Python, with the same bytes.
"""

from __future__ import annotations

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("trio_ws._speedups", ["trio_ws/_speedups.c"], optional=True)]
)
