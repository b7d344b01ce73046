"""The compatibility layer on a corpus of small programs: what Dafny 2.3 already parses still parses
after the layer (a round trip, parse-only: `/noResolve`), the Dafny 4 forms it rewrites parse
afterwards, forms no rewrite understands are left exactly as they are, the rewrites are idempotent,
and the layer's cost is linear and counted inside the verifier's time limit."""

from __future__ import annotations

import subprocess
import time

import pytest

from intelligible.dafnybench import compat
from intelligible.dafnybench.compat import CompatTimeout, to_legacy

# Programs Dafny 2.3 parses as they are: the layer must keep them parseable.
LEGACY = {
    "trigger in a predicate": """
predicate AllPositive(a: array<int>)
  reads a
{
  forall k {:trigger a[k]} :: 0 <= k < a.Length ==> a[k] > 0
}
""",
    "trigger in a loop invariant": """
method {:verify true} Zero(a: array<int>)
  modifies a
  ensures forall k {:trigger a[k]} :: 0 <= k < a.Length ==> a[k] == 0
{
  var i := 0;
  while i < a.Length
    invariant 0 <= i <= a.Length
    invariant forall k {:trigger a[k]} :: 0 <= k < i ==> a[k] == 0
  {
    a[i] := 0;
    i := i + 1;
  }
}
""",
    "attributes on functions and lemmas": """
function {:opaque} F(x: int): int { x + 1 }
function method {:fuel 2} G(x: nat): nat { if x == 0 then 0 else G(x - 1) }
predicate method {:induction false} P(x: int) { x > 0 }
lemma {:induction false} L(x: nat) ensures G(x) == 0 { }
""",
    "legacy function spellings": """
inductive predicate Even(n: nat) { n == 0 || (n >= 2 && Even(n - 2)) }
copredicate Forever(s: Stream) { Forever(s.tail) }
codatatype Stream = Cons(head: int, tail: Stream)
colemma AlwaysForever(s: Stream) ensures Forever(s) { AlwaysForever(s.tail); }
inductive lemma EvenPlusTwo(n: nat) requires Even(n) ensures Even(n + 2) { }
class C {
  var x: int
  static function method Twice(y: int): int { 2 * y }
  predicate Valid() reads this { x >= 0 }
  constructor () ensures Valid() { x := 0; }
}
""",
    "datatype patterns": """
datatype List = Nil | Cons(head: int, tail: List)
function Length(l: List): nat {
  match l
  case Nil => 0
  case Cons(_, rest) => 1 + Length(rest)
}
function SecondOr(l: List, d: int): int {
  match l
  case Cons(_, Cons(y, _)) => y
  case Cons(_, Nil) => d
  case Nil => d
}
method Sum(l: List) returns (s: int) {
  match l {
    case Nil => s := 0;
    case Cons(h, t) =>
      var r := Sum(t);
      s := h + r;
  }
}
""",
    "quantifiers and comprehensions": """
function Doubles(s: set<int>): set<int> { set x | x in s :: 2 * x }
function Index(s: seq<int>): map<int, int> { map i | 0 <= i < |s| :: s[i] }
predicate SomePositive(s: set<int>) { exists x | x in s :: x > 0 }
predicate Pairs(s: set<int>) { forall x, y | x in s && y in s :: x + y == y + x }
function Inc(): int -> int { x => x + 1 }
function Apply(f: int -> int, x: int): int { f(x) }
lemma UsesThem() ensures Apply(Inc(), 1) == 2 && 1 in {1, 2} { }
""",
    "tuples, lets and calc": """
function Swap(p: (int, int)): (int, int) { var (a, b) := p; (b, a) }
method M() {
  var (x, y) := (1, 2);
  calc {
    x + y;
    == { assert x == 1; }
    3;
  }
  assert {:focus} x < y;
}
""",
    "keywords inside literals and comments": """
// function for match case expect import opened X
method Strings() returns (s: string, c: char) {
  s := "for i := 0 to 3 { match x { case 0 => } } function {:trigger}";
  c := '{';
  /* ghost function nested /* expect */ predicate */
}
""",
    "modules and imports inside them": """
module A {
  function method One(): int { 1 }
}
module B {
  import opened A
  method UseOne() returns (x: int) ensures x == One() { x := One(); }
}
""",
    "alternative if and labels": """
method Alt(x: int) returns (y: int) {
  if
  case x > 0 => y := 1;
  case x <= 0 => y := 0;
  label outer:
  while true decreases * {
    break outer;
  }
}
""",
    "forall statement and modifies": """
method Clear(a: array<int>)
  modifies a
  ensures forall i | 0 <= i < a.Length :: a[i] == 0
{
  forall i | 0 <= i < a.Length {
    a[i] := 0;
  }
}
""",
    "class with autocontracts": """
class {:autocontracts} Counter {
  var n: nat
  predicate Valid() { n >= 0 }
  constructor () { n := 0; }
  method Inc() ensures n == old(n) + 1 { n := n + 1; }
}
""",
}

# Dafny 4 forms the layer rewrites: they must parse on Dafny 2.3 afterwards.
MODERN = {
    "for loop with a trigger in its invariant": """
method Fill(a: array<int>)
  modifies a
  ensures forall k {:trigger a[k]} :: 0 <= k < a.Length ==> a[k] == k
{
  for i := 0 to a.Length
    invariant forall k {:trigger a[k]} :: 0 <= k < i ==> a[k] == k
  {
    a[i] := i;
  }
}
""",
    "for loop bounded by a cardinality, with a comment in the header": """
method Count(s: seq<int>) returns (n: nat)
{
  n := 0;
  for i := 0 to |s|   // every element
    // counted so far
    invariant n <= i
  {
    n := n + 1;
  }
}
""",
    "literal match expression with lets": """
function Name(n: int): int {
  match n
  case 0 => var y := 1; y
  case -1 => 2
  case _ => 3
}
""",
    "literal match statement with if bodies": """
method Op(c: char, a: int) returns (r: int) {
  r := 0;
  match c {
    case '+' => if a > 0 { r := a; }
    case '-' | '~' => r := -a;
    case _ =>
  }
}
""",
    "tuple sub-pattern with a wildcard": """
datatype Option<T> = None | Some(value: T)
function Second(o: Option<(int, (int, int))>): int {
  match o
  case None => 0
  case Some((_, (b, _))) => b
}
""",
    "datatype members with comprehensions and lambdas over field names": """
datatype Box = Box(items: set<int>, limit: int) {
  ghost predicate Small() { forall items | items in this.items :: items < limit }
  function Bigger(): set<int> { set limit | limit in items :: limit + 1 }
  function Adder(): int -> int { limit => limit + 1 }
  function Sum(): int { var (a, b) := (limit, limit); a + b }
}
method Use(b: Box) returns (x: int) { x := b.Sum(); }
""",
    "nested named constructor arguments": """
datatype P = P(x: int, y: int)
datatype Q = Q(p: P, z: int)
method Make() returns (q: Q) {
  q := Q(z := 3, p := P(y := 2, x := 1));
}
""",
    "ghost function with a trigger": """
ghost function Count(a: seq<int>): nat { |set k {:trigger a[k]} | 0 <= k < |a| && a[k] > 0| }
function Compiled(x: int): int { x }
""",
}

# Forms no rewrite understands: each rewrite must leave the text exactly as it is.
REFUSED = {
    "unbounded for loop": (
        "rewrite_for_loops",
        """
method Forever() decreases * {
  for i := 0 to * decreases * {
  }
}
""",
    ),
    "match on a hexadecimal literal": (
        "rewrite_literal_matches",
        """
function H(n: int): int {
  match n
  case 0x10 => 1
  case _ => 0
}
""",
    ),
    "match whose bodies are only braces": (
        "rewrite_literal_matches",
        """
function S(n: int): set<int> {
  match n
  case 0 => {}
  case _ => {}
}
""",
    ),
    "tuple pattern holding a literal": (
        "rewrite_tuple_subpatterns",
        """
datatype Option<T> = None | Some(value: T)
function F(o: Option<(int, int)>): int {
  match o
  case Some((0, b)) => b
  case _ => 0
}
""",
    ),
    "tuple pattern holding a constructor": (
        "rewrite_tuple_subpatterns",
        """
datatype Option<T> = None | Some(value: T)
function G(o: Option<(Option<int>, int)>): int {
  match o
  case Some((Some(a), b)) => a + b
  case _ => 0
}
""",
    ),
    "datatype with a const member": (
        "rewrite_datatype_members",
        """
datatype D = D(x: int) {
  const zero := 0
  function Get(): int { x }
}
""",
    ),
    "abstract import": (
        "wrap_top_level_imports",
        """
abstract module Spec { function F(): int }
import S : Spec
method M() { }
""",
    ),
    "named argument after which a positional one comes": (
        "rewrite_named_constructor_arguments",
        """
datatype P = P(x: int, y: int)
method Make() returns (p: P) { p := P(y := 2, 1); }
""",
    ),
}


def _parse_errors(binary: str, programs: dict[str, str], folder) -> str:  # noqa: ANN001
    """Dafny's parse-only verdict on each program, all in one run ("" when every one parses); Dafny
    stops at the first file with errors, which its message names."""
    names = []
    for index, text in enumerate(programs.values()):
        path = folder / f"p{index}.dfy"
        path.write_text(text)
        names.append(str(path))
    run = subprocess.run([binary, "/compile:0", "/nologo", "/noResolve", *names], capture_output=True, text=True,
                         timeout=120)  # fmt: skip
    if run.returncode == 0 and "error" not in run.stdout.lower():
        return ""
    index = next((i for i, n in enumerate(names) if n in run.stdout), None)
    which = list(programs)[index] if index is not None else "?"
    return f"{which}: {run.stdout.strip()[:400]}"


def test_programs_dafny_23_parses_still_parse_after_the_layer(verifier, tmp_path):
    (tmp_path / "before").mkdir()
    (tmp_path / "after").mkdir()
    assert _parse_errors(verifier.binary, LEGACY, tmp_path / "before") == ""  # the corpus itself is valid
    legacy = {name: to_legacy(text) for name, text in LEGACY.items()}
    assert _parse_errors(verifier.binary, legacy, tmp_path / "after") == ""
    for name, text in LEGACY.items():
        assert legacy[name].count("\n") == text.count("\n"), name


def test_dafny_4_forms_parse_on_dafny_23_after_the_layer(verifier, tmp_path):
    legacy = {name: to_legacy(text) for name, text in MODERN.items()}
    assert all(legacy[name] != text for name, text in MODERN.items())  # each one was rewritten
    assert _parse_errors(verifier.binary, legacy, tmp_path) == ""
    for name, text in MODERN.items():
        assert legacy[name].count("\n") == text.count("\n"), name


@pytest.mark.parametrize("name", list(REFUSED))
def test_forms_a_rewrite_does_not_understand_are_left_unchanged(name):
    rewrite, text = REFUSED[name]
    assert getattr(compat, rewrite)(text) == text


def test_attribute_braces_are_never_blocks():
    # a trigger inside a loop invariant is no loop body, and a hint goes with its trigger
    from intelligible.dafnybench.hints import strip_hints

    loop = MODERN["for loop with a trigger in its invariant"]
    assert (
        "while i < a.Length invariant 0 <= i <= a.Length\n    invariant forall k {:trigger a[k]}"
        in to_legacy(loop)
    )
    stripped = strip_hints(LEGACY["trigger in a loop invariant"])
    assert "invariant" not in stripped and "{:trigger a[k]} :: 0 <= k < i" not in stripped
    assert "ensures forall k {:trigger a[k]}" in stripped


@pytest.mark.parametrize("rewrite", ["rewrite_for_loops", "rewrite_literal_matches", "rewrite_tuple_subpatterns",
                                     "rewrite_datatype_members", "rewrite_named_constructor_arguments",
                                     "rewrite_by_method", "rewrite_small_forms", "wrap_top_level_imports"])  # fmt: skip
def test_rewrites_are_idempotent(rewrite):
    function = getattr(compat, rewrite)
    for text in [*LEGACY.values(), *MODERN.values(), *(t for _, t in REFUSED.values())]:
        once = function(text)
        assert function(once) == once, (rewrite, text[:60])


def test_unbalanced_programs_and_garbage_pass_unchanged():
    cut = MODERN["for loop with a trigger in its invariant"][:-3]
    assert to_legacy(cut) == cut
    for garbage in ("", "}}}{{{", "match", "for i := 0 to", "datatype D = A {", "case (", "\x00\x01", "{:"):
        assert isinstance(to_legacy(garbage), str)


def _members_program(count: int) -> str:
    members = "\n".join(f"  predicate P{i}(k: int) {{ x > k + {i} }}" for i in range(count))
    calls = "\n".join(f"  ensures d.P{i}({i}) ==> d.x > {i}" for i in range(count))
    return f"datatype D = D(x: int) {{\n{members}\n}}\n\nlemma L(d: D)\n{calls}\n{{\n}}\n"


def _layer_seconds(count: int) -> float:
    source = _members_program(count)
    start = time.process_time()  # this process's CPU time: other load on the machine does not count
    legacy = to_legacy(source)
    seconds = time.process_time() - start
    assert (
        f"D__P{count - 1}(d, {count - 1})" in legacy and "predicate method D__P0(this__: D, k: int)" in legacy
    )
    return seconds


def test_the_layer_is_linear_in_the_number_of_datatype_members():
    # it was quadratic: 4.4 s for 250 members, 57 s for 1,000, over 60 s for 2,000
    small = min(_layer_seconds(2000) for _ in range(2))
    large = min(_layer_seconds(4000) for _ in range(2))
    assert small < 2.5, small
    assert large / small < 3.0, (small, large)


def test_the_layer_stops_at_its_deadline():
    with pytest.raises(CompatTimeout):
        to_legacy(_members_program(50), deadline=time.monotonic() - 1)


def test_the_layer_runs_inside_the_verifiers_time_limit(verifier, monkeypatch):
    """A program whose rewrite takes the whole time limit is a timeout verdict, and the verifier is
    never started; the time the layer took counts in the verdict's seconds."""
    from intelligible.dafnybench.verifier import Verifier

    if not verifier.legacy:
        pytest.skip("the compatibility layer runs for legacy verifiers only")
    quick = Verifier(time_limit=0.5)

    def slow(source, *, deadline=None):  # noqa: ANN001, ANN202
        while True:
            time.sleep(0.05)
            if time.monotonic() > deadline:
                raise CompatTimeout("past the deadline")

    monkeypatch.setattr(compat, "to_legacy", slow)
    monkeypatch.setattr(Verifier, "_run", lambda *args, **kwargs: pytest.fail("the verifier must not start"))
    verdict = quick.verify("method M() { }")
    assert verdict.status == "timeout" and "compatibility layer" in verdict.messages[0]
    assert 0.45 <= verdict.seconds < 2.0
