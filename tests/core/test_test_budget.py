"""The `make test` budget: slow tests run last and only while their expected time fits."""

from __future__ import annotations

import pytest
from tests import conftest


class _Item:
    def __init__(self, marker):
        self.marker = marker

    def get_closest_marker(self, name):
        return self.marker if name == "slow" else None


def test_slow_tests_are_sorted_last():
    fast, slow = _Item(None), _Item(pytest.mark.slow(seconds=5).mark)
    items = [slow, fast, slow, fast]
    conftest.pytest_collection_modifyitems(None, items)
    assert items == [fast, fast, slow, slow]


def test_a_slow_test_that_does_not_fit_is_skipped_with_the_reason(monkeypatch):
    item = _Item(pytest.mark.slow(seconds=10**6).mark)
    monkeypatch.delenv(conftest.TEST_BUDGET_ENV, raising=False)
    conftest.pytest_runtest_setup(item)  # no budget: everything runs
    monkeypatch.setenv(conftest.TEST_BUDGET_ENV, "900")
    with pytest.raises(
        pytest.skip.Exception, match=r"slow test \(about 1000000 s\) left out: .* of the 900 s budget"
    ):
        conftest.pytest_runtest_setup(item)
    conftest.pytest_runtest_setup(_Item(pytest.mark.slow(seconds=0).mark))  # fits: runs
    conftest.pytest_runtest_setup(_Item(None))  # not slow: runs
    shared = _Item(pytest.mark.slow(seconds=10**6, shared="a-run").mark)
    with pytest.raises(pytest.skip.Exception):
        conftest.pytest_runtest_setup(shared)
    monkeypatch.setattr(conftest, "SHARED_RUNS_DONE", {"a-run"})
    conftest.pytest_runtest_setup(shared)  # the heavy run it shares is done: it fits
