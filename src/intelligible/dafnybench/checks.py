"""Did the answer only add hints? Two checks.

`paper_check`: the official DafnyBench check, kept for comparability — the lines that contain
"requires" or "ensures" (outside comments, spaces removed) must be the same list, and the text must
not contain `{:verify false}` or `assume false` spelled exactly so. It is easy to pass while
cheating: `assume  false`, `{:verify  false}`, `assume x == 5;`, `{:axiom}`, a deleted method body,
a weakened `reads` or changed code all get through.

`strict_check` (the default): the answer, with its hints removed, must be the task's program with
its hints removed, token for token (comments and layout are free). Hints are `assert` (with `by`
blocks), `invariant`, `decreases`, `calc` blocks, and ghost variables used only in hints. Added
`assume`, `expect` (the verifier assumes it), `{:axiom}`, `{:extern}` or `{:verify false}` in any
spelling are rejected first, each with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from intelligible.dafnybench.hints import find_hints
from intelligible.dafnybench.source import line_of, mask, statement_end, tokens

STRICT_HINT_KINDS = ("assert", "invariant", "decreases", "calc")
_FORBIDDEN = {
    "assume": re.compile(r"(?<![A-Za-z0-9_'?])assume(?![A-Za-z0-9_'?])"),
    "expect": re.compile(r"(?<![A-Za-z0-9_'?])expect(?![A-Za-z0-9_'?])"),
    "{:axiom}": re.compile(r"\{\s*:\s*axiom\b"),
    "{:extern}": re.compile(r"\{\s*:\s*extern\b"),
    "{:verify false}": re.compile(r"\{\s*:\s*verify\s+false\s*\}"),
}
_CLAUSES = ("requires", "ensures", "reads", "modifies")
_DECLARATIONS = ("method", "function", "predicate", "lemma", "constructor", "class", "datatype", "iterator")


@dataclass
class CheckResult:
    """Whether an answer passes a check, and why not."""

    ok: bool
    reasons: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------- the paper's check
def _spec_lines(text: str) -> list[str]:
    # the official logic, line-based, including its treatment of /* ... */ and // lines
    lines, in_doc = [], False
    for line in text.split("\n"):
        if line.strip().startswith("/*"):
            in_doc = not in_doc
        comment = line.strip().startswith("//")
        if ("requires" in line or "ensures" in line) and not in_doc and not comment:
            lines.append(line.strip().replace(" ", ""))
        if line.strip().endswith("*/"):
            in_doc = not in_doc
    return lines


def paper_check(hints_removed: str, answer: str) -> CheckResult:
    """The official DafnyBench check (see the module docstring)."""
    reasons = []
    if _spec_lines(hints_removed) != _spec_lines(answer):
        reasons.append("requires/ensures lines differ from the task's")
    if "{:verify false}" in answer or "assume false" in answer:
        reasons.append("contains {:verify false} or assume false")
    return CheckResult(not reasons, reasons)


# ------------------------------------------------------------------------------- the strict check
def forbidden_constructs(source: str) -> dict[str, list[int]]:
    """Lines (1-based) of each verification escape hatch in the code (comments ignored)."""
    code = mask(source)
    found: dict[str, list[int]] = {}
    for name, pattern in _FORBIDDEN.items():
        lines = [line_of(source, m.start()) for m in pattern.finditer(code)]
        if lines:
            found[name] = lines
    return found


def _ghost_hint_spans(source: str, stripped_spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`ghost var x ...;` declarations, and assignments to x, when x occurs nowhere else but in hints."""
    code = mask(source)
    in_hint = bytearray(len(source))
    for start, end in stripped_spans:
        in_hint[start:end] = b"\x01" * (end - start)
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"(?<![A-Za-z0-9_'?])ghost\s+var\s+([A-Za-z_][A-Za-z0-9_'?]*)", code):
        if in_hint[match.start()]:
            continue
        name = match.group(1)
        declaration = (match.start(), statement_end(code, match.start()))
        own = [declaration]
        used_elsewhere = False
        for use in re.finditer(r"(?<![A-Za-z0-9_'?.])" + re.escape(name) + r"(?![A-Za-z0-9_'?])", code):
            if declaration[0] <= use.start() < declaration[1] or in_hint[use.start()]:
                continue
            after = code[use.end() :].lstrip()
            line_start = code.rfind("\n", 0, use.start()) + 1
            if after.startswith(":=") and not code[line_start : use.start()].strip():
                own.append((use.start(), statement_end(code, use.start())))  # `x := ...;` on its own
                continue
            if any(start <= use.start() < end for start, end in own):
                continue
            used_elsewhere = True
            break
        if not used_elsewhere:
            spans += own
    return spans


def skeleton(source: str) -> list[tuple[str, int]]:
    """The program's tokens without hints and hint-only ghost variables (see the module docstring)."""
    hint_spans = [(h.start, h.end) for h in find_hints(source, STRICT_HINT_KINDS)]
    spans = hint_spans + _ghost_hint_spans(source, hint_spans)
    keep = bytearray(b"\x01") * len(source)
    for start, end in spans:
        keep[start:end] = b"\x00" * (end - start)
    return [(text, offset) for text, offset in tokens(source) if keep[offset]]


def strict_check(hints_removed: str, answer: str, *, ground_truth: str | None = None) -> CheckResult:
    """The strict check (see the module docstring). With `ground_truth`, the reference program is also
    the ground truth without its hints — the benchmark's hint removal left dangling continuation
    lines in some tasks, and an answer that drops them has changed nothing."""
    reasons: list[str] = []
    allowed = forbidden_constructs(hints_removed)
    for name, lines in forbidden_constructs(answer).items():
        if len(lines) > len(allowed.get(name, [])):
            reasons.append(f"adds {name} (line {lines[0]})" if len(lines) == 1 else
                           f"adds {name} (lines {', '.join(map(str, lines))})")  # fmt: skip
    if reasons:
        return CheckResult(False, reasons)
    theirs = skeleton(answer)
    references = [hints_removed] + ([ground_truth] if ground_truth is not None else [])
    best: tuple[int, str] | None = None
    for reference in references:
        ours = skeleton(reference)
        if [t for t, _ in ours] == [t for t, _ in theirs]:
            return CheckResult(True, [])
        size, reason = _first_change(reference, ours, answer, theirs)
        if best is None or size < best[0]:
            best = (size, reason)
    assert best is not None
    return CheckResult(False, [best[1]])


def _first_change(reference: str, ours: list[tuple[str, int]], answer: str, theirs: list[tuple[str, int]]
                  ) -> tuple[int, str]:  # fmt: skip
    """(number of differing tokens, a reason naming the first change, its line and its kind)."""
    import difflib

    matcher = difflib.SequenceMatcher(a=[t for t, _ in ours], b=[t for t, _ in theirs], autojunk=False)
    changes = [op for op in matcher.get_opcodes() if op[0] != "equal"]
    size = sum(max(i2 - i1, j2 - j1) for _, i1, i2, j1, j2 in changes)
    tag, i1, i2, j1, j2 = changes[0]
    removed = " ".join(t for t, _ in ours[i1:i2])
    added = " ".join(t for t, _ in theirs[j1:j2])
    short = lambda text: text if len(text) <= 60 else text[:57] + "..."  # noqa: E731
    if tag == "delete":
        where = ours[i1][1]
        what = f"removes `{short(removed)}`"
        if removed.startswith("{") and removed.endswith("}") and len(removed) > 2:
            what = f"deletes a body `{short(removed)}`"
        return size, f"{what} ({_kind(reference, where)}, task line {line_of(reference, where)})"
    where = theirs[j1][1]
    what = (
        f"adds `{short(added)}`" if tag == "insert" else f"replaces `{short(removed)}` with `{short(added)}`"
    )
    return size, f"{what} ({_kind(answer, where)}, line {line_of(answer, where)})"


def _kind(source: str, offset: int) -> str:
    """What the code at `offset` belongs to: a specification clause, a signature, or code."""
    code = mask(source)
    clause = None
    pattern = r"(?<![A-Za-z0-9_'?])(" + "|".join(_CLAUSES + _DECLARATIONS) + r")(?![A-Za-z0-9_'?])|[{};]"
    for match in re.finditer(pattern, code[:offset]):
        clause = match.group(1) or match.group(0)
    if clause in _CLAUSES:
        return f"{clause} clause"
    if clause in _DECLARATIONS:
        return f"{clause} signature"
    return "code"
