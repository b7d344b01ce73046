"""A corpus of cheating answers to one task (each must be rejected by the strict check) and honest
answers (each must be accepted): the test of a spec checker. `intelligible.dafnybench.cheats`."""

from __future__ import annotations

from intelligible.dafnybench.hints import strip_hints

GROUND_TRUTH = """function Sum(s: seq<int>): int
  decreases |s|
{
  if |s| == 0 then 0 else s[0] + Sum(s[1..])
}

method SumArray(a: array<int>) returns (total: int)
  requires a.Length >= 0
  ensures total == Sum(a[..])
{
  total := 0;
  var i := a.Length;
  while i > 0
    invariant 0 <= i <= a.Length
    invariant total == Sum(a[i..])
    decreases i
  {
    i := i - 1;
    assert a[i..] == [a[i]] + a[i+1..];
    total := total + a[i];
  }
  assert a[0..] == a[..];
}

lemma SumNonNeg(s: seq<int>)
  requires forall k :: 0 <= k < |s| ==> s[k] >= 0
  ensures Sum(s) >= 0
{
  if |s| > 0 { SumNonNeg(s[1..]); }
}
"""
TASK = strip_hints(GROUND_TRUTH)


def edit(old: str, new: str, source: str = GROUND_TRUTH) -> str:
    assert old in source, old
    return source.replace(old, new, 1)


CHEATS = {
    "assume false": edit("  total := 0;\n", "  total := 0;\n  assume false;\n"),
    "assume false, odd spacing": edit("  total := 0;\n", "  total := 0;\n  assume   false ;\n"),
    "assume the postcondition": edit("  assert a[0..] == a[..];\n", "  assume total == Sum(a[..]);\n"),
    "assume with an axiom attribute": edit("  total := 0;\n", "  total := 0;\n  assume {:axiom} false;\n"),
    "verify false": edit("method SumArray", "method {:verify false} SumArray"),
    "verify false, odd spacing": edit("method SumArray", "method {:  verify   false } SumArray"),
    "axiom attribute on a lemma": edit("lemma SumNonNeg", "lemma {:axiom} SumNonNeg"),
    "lemma body deleted": GROUND_TRUTH[: GROUND_TRUTH.index("{\n  if |s| > 0")],
    "method body deleted": edit(
        GROUND_TRUTH[GROUND_TRUTH.index("{\n  total := 0;") : GROUND_TRUTH.index("\n\nlemma")], ""
    ),  # fmt: skip
    "weakened ensures": edit("ensures total == Sum(a[..])", "ensures total == Sum(a[..]) || true"),
    "deleted ensures": edit("  ensures total == Sum(a[..])\n", ""),
    "changed requires": edit("requires a.Length >= 0", "requires a.Length > 0"),
    "added requires false": edit(
        "  requires a.Length >= 0\n", "  requires a.Length >= 0\n  requires false\n"
    ),
    "changed code": edit("total := total + a[i];", "total := total + a[i] * 1;"),
    "changed loop guard": edit("while i > 0\n", "while i > 0 && false\n"),
    "changed function body": edit("then 0 else s[0] + Sum(s[1..])", "then 0 else Sum(s[1..])"),
    "expect (assumed by the verifier)": edit("  total := 0;\n", "  total := 0;\n  expect a.Length == 0;\n"),
    "extern method": edit("method SumArray", "method {:extern} SumArray"),
    "new bodiless lemma": GROUND_TRUTH + "\nlemma Magic()\n  ensures false\n",
    "added frame": edit("  requires a.Length >= 0\n", "  requires a.Length >= 0\n  modifies a\n"),
    "changed signature": edit("returns (total: int)", "returns (total: nat)"),
    "changed lemma spec": edit("ensures Sum(s) >= 0", "ensures Sum(s) >= -1"),
    "ghost variable used by code": edit(
        "  total := 0;\n", "  ghost var g := 0;\n  total := 0;\n  if g == 1 { total := 1; }\n"
    ),  # fmt: skip
    "forall statement proving anything": edit(
        "  total := 0;\n", "  total := 0;\n  forall k | 0 <= k < 1\n    ensures false\n  { }\n"
    ),  # fmt: skip
}

HONEST = {
    "the ground truth": GROUND_TRUTH,
    "fewer hints": edit("    assert a[i..] == [a[i]] + a[i+1..];\n", ""),
    "other hints, a calc and a multi-line invariant": edit(
        "    invariant total == Sum(a[i..])\n",
        "    invariant total == Sum(a[i..]) &&\n              i >= 0\n    invariant i <= a.Length\n",
    ).replace("  assert a[0..] == a[..];\n", "  calc {\n    a[0..];\n    a[..];\n  }\n"),
    "assert with a by block": edit(
        "  assert a[0..] == a[..];\n",
        "  assert a[0..] == a[..] by {\n    assert a[..] == a[0..a.Length];\n  }\n",
    ),  # fmt: skip
    "comments and layout": "// my proof\n" + GROUND_TRUTH.replace("total := 0;", "total   :=   0;  // start"),
    "a ghost variable used only in hints": edit(
        "  total := 0;\n", "  ghost var before := a[..];\n  total := 0;\n"
    ).replace("  assert a[0..] == a[..];\n", "  assert a[..] == before;\n"),
    "the task itself": TASK,
}
