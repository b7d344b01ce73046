"""The real verifier on small hand-written programs, and the Dafny 4 -> legacy compatibility layer."""

from __future__ import annotations

import pytest
from tests.dafnybench.conftest import FAILED, LOOP, VERIFIED

from intelligible.core.errors import ConfigError, MissingDependencyError
from intelligible.dafnybench.compat import rewrite_for_loops, rewrite_function_syntax, to_legacy
from intelligible.dafnybench.verifier import Verifier, clean_output, parse_output


def test_verified_program(verifier):
    verdict = verifier.verify(VERIFIED)
    assert verdict.status == "verified" and verdict.ok
    assert verdict.verified >= 1 and verdict.errors == 0 and verdict.messages == []


def test_failed_program_names_the_error(verifier):
    verdict = verifier.verify(FAILED)
    assert verdict.status == "failed" and verdict.errors == 1
    assert "postcondition" in verdict.messages[0] and verdict.messages[0].startswith("program.dfy(")


def test_parse_error_and_a_file_that_is_not_dafny(verifier):
    assert verifier.verify("method M( {\n}\n").status == "parse_error"
    verdict = verifier.verify("Hello, this is a shopping list:\n- eggs\n- milk\n")
    assert verdict.status == "parse_error" and not verdict.ok


def test_resolution_error(verifier):
    assert verifier.verify("method M() { var x: int := true; }\n").status == "resolution_error"


def test_wall_clock_timeout_kills_the_verifier(tmp_path):
    quick = Verifier(time_limit=0.3)  # shorter than the verifier's own start-up
    verdict = quick.verify(LOOP)
    assert verdict.status == "timeout" and "killed after 0.3 s" in verdict.messages[0]


def test_solver_timeouts_are_timeouts():
    text = ("program.dfy(3,2): Verification of 'M' timed out after 1 seconds\n"
            "Dafny program verifier finished with 0 verified, 0 errors, 1 time out")  # fmt: skip
    assert parse_output(text).status == "timeout"
    assert parse_output('Prover error: (error "out of memory")\nfinished').status == "out_of_memory"


def test_known_solver_noise_is_dropped():
    raw = ("Dafny 2.3.0.10506\nProver error: line 18 column 28: unknown parameter 'model_compress'\n"
           "Legal parameters are:\n  auto_config (bool) (default: true)\n  well_sorted_check (bool)\n"
           "program.dfy(5,2): Error BP5003: A postcondition might not hold on this return path.\n"
           "Dafny program verifier finished with 1 verified, 1 error\n")  # fmt: skip
    cleaned = clean_output(raw)
    assert "model_compress" not in cleaned and "auto_config" not in cleaned and "Dafny 2.3" not in cleaned
    assert cleaned.splitlines() == raw.splitlines()[5:7]
    assert parse_output(cleaned).status == "failed"


def test_verdicts_are_cached_by_content(tmp_path):
    cached = Verifier(cache_dir=tmp_path)
    first, second = cached.verify(VERIFIED), cached.verify(VERIFIED)
    assert not first.cached and second.cached and second.status == first.status
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_verify_many_keeps_order_across_workers(verifier):
    verdicts = verifier.verify_many([FAILED, VERIFIED, LOOP], workers=2)
    assert [v.status for v in verdicts] == ["failed", "verified", "verified"]
    with pytest.raises(ConfigError, match="executor must be one of process, ray"):
        verifier.verify_many([VERIFIED], executor="slurm")


def test_missing_dafny_is_a_one_line_error_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(MissingDependencyError) as error:
        Verifier()
    message = str(error.value)
    assert "\n" not in message and "apt-get install -y dafny" in message
    with pytest.raises(MissingDependencyError, match="dafny not found at /no/such/dafny"):
        Verifier(dafny="/no/such/dafny")


# ------------------------------------------------------------------------- compatibility layer
def test_function_syntax_is_rewritten_outside_comments():
    source = ("ghost function F(x: int): int { x }\nfunction G(x: int): int { x }\npredicate P() { true }\n"
              "ghost predicate Q() { true }\nfunction method H(): int { 1 }\n// function in a comment\n"
              "least predicate L(n: nat) { n == 0 || L(n - 1) }\ngreatest predicate C() { true }\n"
              "opaque function O(): int { 2 }\nlemma Z() {}\n")  # fmt: skip
    legacy = rewrite_function_syntax(source).splitlines()
    assert legacy[:6] == ["function F(x: int): int { x }", "function method G(x: int): int { x }",
                          "predicate method P() { true }", "predicate Q() { true }",
                          "function method H(): int { 1 }", "// function in a comment"]  # fmt: skip
    assert legacy[6].startswith("inductive predicate L") and legacy[7].startswith("copredicate C")
    assert legacy[8].startswith("function method {:opaque} O") and legacy[9] == "lemma Z() {}"


FOR_PROGRAM = """
method Fill(a: array<int>)
  modifies a
  ensures forall k :: 0 <= k < a.Length ==> a[k] == k
{
  for i := 0 to a.Length
    invariant forall k :: 0 <= k < i ==> a[k] == k
  {
    a[i] := i;
  }
}

method Down(n: nat) returns (s: int)
  ensures s == n
{
  s := 0;
  for j := n downto 0
    invariant s == n - j
  {
    s := s + 1;
  }
}

function Twice(x: int): int { 2 * x }

method UsesCompiled() returns (y: int)
  ensures y == 4
{
  y := Twice(2);
}
"""


def test_for_loops_become_while_loops_that_verify(verifier):
    legacy = rewrite_for_loops(FOR_PROGRAM)
    assert "for i" not in legacy and "while i < a.Length invariant 0 <= i <= a.Length" in legacy
    assert "j := j - 1;" in legacy
    assert legacy.count("\n") == FOR_PROGRAM.count("\n")  # line numbers of errors still match
    assert verifier.verify(FOR_PROGRAM).ok  # through to_legacy, on the real verifier
    broken = FOR_PROGRAM.replace("a[i] := i;", "a[i] := i + 1;")
    assert verifier.verify(broken).status == "failed"


def test_top_level_imports_are_wrapped_keeping_line_numbers(verifier):
    program = ("module Types {\n  type T = int\n}\nimport opened Types\n\n"
               "method M(x: T) returns (y: T)\n  ensures y == x\n{\n  y := x + 1;\n}\n")  # fmt: skip
    legacy = to_legacy(program)
    assert legacy.splitlines()[3] == "import opened Types__legacy = Types"
    verdict = verifier.verify(program)
    plain = verifier.verify(program.replace("import opened Types", "").replace(": T", ": int"))
    assert verdict.status == plain.status == "failed"
    assert verdict.messages[0].split(":")[0] == plain.messages[0].split(":")[0]  # same line and column


def test_small_dafny4_forms(verifier):
    from intelligible.dafnybench.compat import rewrite_small_forms

    source = ('method M<T(00)>(x: int)\n{\n  expect x == x, "always";\n  expect f(x, 1) > 0;\n}\n'
              "module B refines A {\n  class C<U> ... {\n  }\n}\n")  # fmt: skip
    legacy = rewrite_small_forms(source).splitlines()
    assert legacy[0] == "method M<T(0)>(x: int)"
    assert legacy[2] == "  assume x == x;" and legacy[3] == "  assume f(x, 1) > 0;"
    assert legacy[6] == "  class C<U> {"
    program = "method Main() {\n  var a := [1, 2];\n  expect a[0] == 1;\n  assert a[0] == 1;\n}\n"
    assert verifier.verify(program).ok


def test_ray_executor_path_and_its_missing_dependency(monkeypatch, verifier):
    import sys
    import types

    calls = []
    fake = types.ModuleType("ray")
    fake.is_initialized = lambda: bool(calls)
    fake.init = lambda **kwargs: calls.append(kwargs)

    def remote(**options):
        def wrap(function):
            return types.SimpleNamespace(remote=lambda *args: function(*args))

        return wrap

    fake.remote = remote
    fake.get = lambda values: list(values)
    monkeypatch.setitem(sys.modules, "ray", fake)
    verdicts = verifier.verify_many([VERIFIED, FAILED], workers=2, executor="ray")
    assert [v.status for v in verdicts] == ["verified", "failed"] and calls[0]["num_cpus"] == 2
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(MissingDependencyError, match="--executor ray needs ray"):
        verifier.verify_many([VERIFIED, FAILED], workers=2, executor="ray")


# Dafny 3/4 forms Debian's Dafny 2.3.0 cannot read, each from a development-split ground truth
MEMBERS_PROGRAM = """datatype Player = P1 | P2
{
  function Other(): Player {
    if this == P1 then P2 else P1
  }
}
datatype Constants = Constants(ids: seq<nat>) {
  ghost predicate ValidIdx(i: int) { 0 <= i < |ids| }
  ghost predicate WF() { forall i | ValidIdx(i) :: ids[i] > 0 }
}
datatype Variables = Variables(turn: Player, count: nat) {
  ghost predicate WF(c: Constants) { c.WF() && count <= |c.ids| }
}

lemma Flip(v: Variables, c: Constants)
  requires v.WF(c) && v.turn == P1
  ensures v.turn.Other() == P2 && c.WF()
{
  var w := Variables(count := v.count, turn := v.turn.Other());
  assert w.turn == P2;
}
"""

MATCH_PROGRAM = """function Fib(n: nat): nat {
  match n {
    case 0 => 0
    case 1 => 1
    case _ => Fib(n - 1) + Fib(n - 2)
  }
}

function Sign(n: int): int
{
  match n
  case 0 => 0
  case k => if k < 0 then -1 else 1
}

method Apply(op: char, a: int, b: int) returns (r: int)
  ensures op == '+' ==> r == a + b
{
  r := 0;
  match op {
    case '+' =>
      r := a + b;
    case '-' | '~' =>
      r := a - b;
    case _ =>
  }
}

datatype Option<T> = None | Some(value: T)
function First(o: Option<(int, int)>): int {
  match o
  case None => 0
  case Some((a, b)) => a
}

function Comb(n: nat, k: nat): nat
  requires k <= n
{
  if k == 0 || k == n then 1 else Comb(n - 1, k) + Comb(n - 1, k - 1)
}
by method
{
  if k == 0 || k == n { return 1; }
  var a := Comb(n - 1, k);
  var b := Comb(n - 1, k - 1);
  return a + b;
}

lemma Facts() ensures Fib(5) == 5 && Sign(-3) == -1 && First(Some((4, 2))) == 4 {}
"""


def test_datatype_members_and_named_arguments_are_rewritten_and_verify(verifier):
    legacy = to_legacy(MEMBERS_PROGRAM)
    assert legacy.count("\n") == MEMBERS_PROGRAM.count("\n")
    assert "function method Player__Other(this__: Player)" in legacy
    assert "predicate Constants__ValidIdx(this__: Constants, i: int) { 0 <= i < |this__.ids| }" in legacy
    # `WF` exists on two datatypes: told apart by argument count
    assert "Variables__WF(v, c)" in legacy and "Constants__WF(c)" in legacy
    assert "Player__Other(v.turn) == P2" in legacy
    assert "Variables(Player__Other(v.turn), v.count)" in legacy  # named arguments in declared order
    assert verifier.verify(MEMBERS_PROGRAM).ok
    assert (
        verifier.verify(
            MEMBERS_PROGRAM.replace("ensures v.turn.Other() == P2", "ensures v.turn.Other() == P1")
        ).status
        == "failed"
    )


def test_literal_matches_tuple_patterns_and_by_method_are_rewritten_and_verify(verifier):
    from intelligible.dafnybench.compat import (
        rewrite_by_method,
        rewrite_literal_matches,
        rewrite_tuple_subpatterns,
    )

    matches = rewrite_literal_matches(MATCH_PROGRAM)
    assert "(if n == 0 then (" in matches and ") else if n == 1 then (" in matches
    assert "if op == '+' {" in matches and "} else if op == '-' || op == '~' {" in matches
    assert "var k := n;" in matches
    assert "case Some(tuple__1) => var (a, b) := tuple__1;" in rewrite_tuple_subpatterns(MATCH_PROGRAM)
    by_method = rewrite_by_method(MATCH_PROGRAM)
    assert ("method Comb__by_method(n: nat, k: nat) returns (r__: nat) requires k <= n ensures r__ == Comb(n, k)"
            in by_method)  # fmt: skip
    legacy = to_legacy(MATCH_PROGRAM)
    assert legacy.count("\n") == MATCH_PROGRAM.count("\n")
    assert verifier.verify(MATCH_PROGRAM).ok
    # the by-method body is still checked against the function
    wrong = MATCH_PROGRAM.replace("return a + b;", "return a + b + 1;")
    assert verifier.verify(wrong).status == "failed"
    wrong = MATCH_PROGRAM.replace("case 1 => 1", "case 1 => 2")
    assert verifier.verify(wrong).status == "failed"


def test_unbalanced_programs_reach_the_verifier_unchanged(verifier):
    # a model's answer may be cut off: the layer must not raise, Dafny reports the parse error
    cut = "method M() {\n  for i := 0 to 3 {\n    print i;\n"
    assert to_legacy(cut) == cut  # the loop's body never closes: nothing is rewritten
    assert verifier.verify(cut).status == "parse_error"
    broken = MATCH_PROGRAM.replace(
        "case _ => Fib(n - 1) + Fib(n - 2)\n  }", "case _ => Fib(n - 1) + Fib(n - 2)\n"
    )
    assert verifier.verify(broken).status == "parse_error"
