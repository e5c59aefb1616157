"""collapse_groups: what leaves a nursery owned by connect or serve."""

from __future__ import annotations

import sys

import pytest
import trio

from trio_ws._util import InternalError, collapse_groups, seconds

if sys.version_info < (3, 11):  # pragma: no cover - trio installs the backport
    from exceptiongroup import BaseExceptionGroup, ExceptionGroup


def test_single_exception_unwrapped_with_context_kept() -> None:
    context = KeyError("context")
    error = ValueError("error")
    error.__context__ = context
    with pytest.raises(ValueError, match="error") as info, collapse_groups():
        raise ExceptionGroup("nursery", [error])
    assert info.value is error
    assert info.value.__context__ is context


def test_without_group_nothing_changes() -> None:
    error = ValueError("error")
    with pytest.raises(ValueError, match="error") as info, collapse_groups():
        raise error
    assert info.value is error
    with collapse_groups():
        pass


def test_cancelled_give_way_to_the_error() -> None:
    # A cancelled owner gets a Cancelled from each of its tasks, maybe
    # beside one real error.
    error = ValueError("error")
    cancelled = [trio.Cancelled._create() for _ in range(2)]
    with pytest.raises(ValueError, match="error") as info, collapse_groups():
        raise BaseExceptionGroup("nursery", [cancelled[0], error, cancelled[1]])
    assert info.value is error


def test_only_cancelled_gives_one_cancelled() -> None:
    cancelled = [trio.Cancelled._create() for _ in range(3)]
    with pytest.raises(trio.Cancelled) as info, collapse_groups():
        raise BaseExceptionGroup("nursery", cancelled)
    assert info.value is cancelled[0]


def test_nested_group_comes_out_as_itself() -> None:
    # A group raised by user code is the user's exception: it is not opened.
    inner = ExceptionGroup("user's own", [ValueError(), KeyError()])
    with pytest.raises(ExceptionGroup) as info, collapse_groups():
        raise ExceptionGroup("nursery", [inner])
    assert info.value is inner


def test_nested_collapses() -> None:
    # serve collapses each of its nurseries: the outer one sees one error.
    error = ValueError("deep")
    with pytest.raises(ValueError, match="deep") as info, collapse_groups():
        try:
            with collapse_groups():
                raise ExceptionGroup("inner nursery", [error])
        except ValueError as exc:
            raise BaseExceptionGroup(
                "outer nursery", [exc, trio.Cancelled._create()]
            ) from None
    assert info.value is error


def test_two_errors_are_an_internal_error() -> None:
    group = ExceptionGroup("nursery", [ValueError(), KeyError()])
    with pytest.raises(InternalError) as info, collapse_groups():
        raise group
    assert str(info.value) == (
        "several errors escaped a trio_ws connection; please report this bug"
    )
    assert info.value.__cause__ is group


def test_seconds() -> None:
    assert seconds(None) == float("inf")
    assert seconds(2.5) == 2.5
    assert seconds(0) == 0
