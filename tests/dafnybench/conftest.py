"""DafnyBench fixtures: the real verifier (installed by `make setup`) and the shared development split."""

from __future__ import annotations

import pytest

from intelligible.core.errors import DataError


@pytest.fixture(scope="session")
def verifier(tmp_path_factory):
    from intelligible.dafnybench.verifier import Verifier

    return Verifier(time_limit=120, cache_dir=tmp_path_factory.mktemp("verdicts"))


@pytest.fixture(scope="session")
def dev_tasks():
    from intelligible.dafnybench.experiment import default_tasks

    try:
        return default_tasks()
    except DataError as error:  # the shared data copy is not part of a bare checkout
        pytest.skip(str(error))


VERIFIED = """
method Abs(x: int) returns (y: int)
  ensures y >= 0
  ensures y == x || y == -x
{
  if x < 0 { y := -x; } else { y := x; }
}
"""

LOOP = """
method Double(n: nat) returns (s: nat)
  ensures s == 2 * n
{
  s := 0;
  var i := 0;
  while i < n
    invariant 0 <= i <= n
    invariant s == 2 * i
  {
    i := i + 1;
    s := s + 2;
  }
}
"""

FAILED = """
method Wrong(x: int) returns (y: int)
  ensures y > x
{
  y := x;
}
"""
