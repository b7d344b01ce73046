"""DafnyBench fixtures: the real verifier (installed by `make setup`) and the development split bundled
with the package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def verifier(tmp_path_factory):
    from intelligible.dafnybench.verifier import Verifier

    return Verifier(time_limit=120, cache_dir=tmp_path_factory.mktemp("verdicts"))


@pytest.fixture(scope="session")
def dev_tasks():
    from intelligible.dafnybench.data import BUNDLED_DATA, load_tasks

    return load_tasks(BUNDLED_DATA)  # ships with the package: never skipped


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
