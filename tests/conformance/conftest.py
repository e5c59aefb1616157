from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import trio.testing


@pytest.fixture(autouse=True)
def _virtual_time(autojump_clock: trio.testing.MockClock) -> None:
    """Every conformance case runs on virtual time: memory streams only, so a
    hang fails at once, and timeouts can be asserted exactly."""
