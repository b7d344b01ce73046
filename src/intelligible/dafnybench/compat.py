"""Dafny 4 programs for legacy verifiers (Dafny 2.x/3.x, such as Debian's 2.3.0).

The rewrites, each measured on the benchmark's ground truths (docs/dafnybench.md):

- function syntax: Dafny 4's `function` is compiled and `ghost function` is ghost; before Dafny 4 a
  plain `function` was ghost and `function method` compiled. So `ghost function` -> `function`,
  `function` -> `function method` (same for `predicate`); `least`/`greatest predicate|lemma` ->
  `inductive predicate|lemma`, `copredicate`, `colemma`; the `opaque` modifier -> `{:opaque}`.
- `for` loops (Dafny 4 only) become `while` loops with the loop's implicit bounds invariant:
  `for i := lo to hi SPECS { BODY }` ->
  `{ var i := lo; while i < hi invariant lo <= i <= hi SPECS { BODY i := i + 1; } }`, and
  `downto` counts down (`i := i - 1` first, so the body sees hi - 1 ... lo).
- a top-level `import` (Dafny 4 allows it in the default module) puts the program in one module.
- datatype members (`datatype D = ... { predicate P(x) { ... } }`) become top-level `D__P(this__: D, x)`,
  calls `e.P(a)` become `D__P(e, a)`; named constructor arguments `C(y := 1, x := 2)` become positional.
- `match` on literal patterns (`case 0 =>`, `case 'a' | 'b' =>`) becomes an if-chain; a tuple inside a
  constructor pattern (`case Some((k, v))`, on which 2.3.0 crashes) is bound first and taken apart by a `var`.
- `function F ... { E } by method { S }` keeps the function and checks `S` as a method whose postcondition
  is `r == F(...)`: the obligation Dafny 4 gives a by-method body.
- smaller forms: `expect E;` -> `assume E;` (what the verifier makes of it), `T(00)` -> `T(0)`,
  `class C ... {` (a refined class) -> `class C {`.

Every rewrite keeps the line count, so the verifier's error positions point at the user's program.

Positions are found in `source.mask(...)`, so keywords in comments and strings are left alone. Each
rewrite refuses what it does not understand and leaves that text as it is (the verifier then reports
it), rather than guessing: a `{` that opens an attribute (`{:trigger ...}`) is never a block, a loop
`for i := lo to *`, a `match` whose cases it cannot read as all statements or all expressions, a tuple
pattern holding literals, a datatype members block with anything but functions, predicates, lemmas
and methods, an abstract `import X : Y`, and any program whose brackets do not balance are left alone.
Each rewrite is linear in the program's length (nested forms take one pass per nesting level).
"""

from __future__ import annotations

import bisect
import re
import time
from collections import deque
from collections.abc import Callable, Iterator

from intelligible.dafnybench.source import (
    IDENT_CHAR,
    clause_end,
    closing_bracket,
    is_attribute,
    mask,
    matching_brace,
    opens_block,
    previous_token,
    statement_end,
)

_WORD_BEFORE = r"(?<![A-Za-z0-9_'?.])"
_WORD_AFTER = r"(?![A-Za-z0-9_'?])"
_NAME = r"[A-Za-z_][A-Za-z0-9_'?]*"
MAX_PASSES = 64  # nesting levels a multi-pass rewrite follows (one pass per level)


class CompatTimeout(Exception):
    """The compatibility layer ran past its deadline (the verifier's time limit)."""


def _check(deadline: float | None) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise CompatTimeout("the compatibility layer ran past the time limit")


def _apply(source: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace spans (start, end, text), given in any order and not overlapping; linear in the length."""
    pieces, at = [], 0
    for start, end, text in sorted(edits):
        pieces += [source[at:start], text]
        at = end
    pieces.append(source[at:])
    return "".join(pieces)


def _innermost(candidates: list[tuple[int, int, object]]) -> list[object]:
    """Of candidate spans (start, end, payload), a largest set that do not overlap, the ones that end
    first preferred: in properly nested spans, those are the innermost."""
    chosen, last_end = [], -1
    for start, end, payload in sorted(candidates, key=lambda c: (c[1], -c[0])):
        if start >= last_end:
            chosen.append(payload)
            last_end = end
    return chosen


def _char_before(masked: str, at: int) -> str:
    """The last non-blank character before `at` ("" at the start): O(blank run), not O(at)."""
    k = at - 1
    while k >= 0 and masked[k].isspace():
        k -= 1
    return masked[k] if k >= 0 else ""


def _balanced(masked: str) -> bool:
    stack: list[str] = []
    pairs = {")": "(", "]": "[", "}": "{"}
    for match in re.finditer(r"[()\[\]{}]", masked):
        c = match.group(0)
        if c in "([{":
            stack.append(c)
        elif not stack or stack.pop() != pairs[c]:
            return False
    return not stack


_BRACKETS = re.compile(r"[()\[\]{}]")


def _top_level_spans(masked: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """Spans [a, b) of the text in [start, end) at bracket depth 0 relative to `start`, an opening
    bracket ending its span; a bracket closing an enclosing one ends the last span. One regex step
    per bracket, so scanning a long block is cheap."""
    depth, at = 0, start
    for match in _BRACKETS.finditer(masked, start, end):
        k, c = match.start(), match.group(0)
        if c in "([{":
            if depth == 0:
                yield at, k + 1
            depth += 1
        elif depth == 0:
            yield at, k + 1
            return
        else:
            depth -= 1
            if depth == 0:
                at = k + 1
    if depth == 0 and at < end:
        yield at, end


def _iter_top_level(masked: str, start: int, end: int) -> Iterator[tuple[int, str]]:
    """(offset, character) of every character in [start, end) at bracket depth 0 relative to `start`,
    opening brackets included; a bracket closing an enclosing one is the last one yielded. Lazy, so a
    caller that stops early pays only for what it read."""
    for a, b in _top_level_spans(masked, start, end):
        for k in range(a, b):
            yield k, masked[k]


def _top_level_count(masked: str, start: int, end: int, char: str) -> int:
    return sum(masked.count(char, a, b) for a, b in _top_level_spans(masked, start, end))


def _top_level(masked: str, start: int, end: int) -> list[tuple[int, str]]:
    return list(_iter_top_level(masked, start, end))


def _newlines(text: str) -> str:
    return "\n" * text.count("\n")


def _flat(text: str) -> str:
    """`text` on one line, its comments dropped (a `//` would swallow the rest of the line)."""
    return " ".join(mask(text, literals=False).split())


# ------------------------------------------------------------------------------- function syntax
_FUNCTION_WORDS = re.compile(
    _WORD_BEFORE + r"(?:(ghost|least|greatest|twostate|opaque)\s+)?(?:(ghost|opaque)\s+)?"
    r"(function|predicate|lemma)" + _WORD_AFTER + r"(\s+method" + _WORD_AFTER + r")?"
)


def rewrite_function_syntax(source: str) -> str:
    """Dafny 4 function/predicate modifiers in the pre-4 spelling (see the module docstring). Legacy
    spellings (`function method`, `inductive predicate`) are left as they are."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    attributes = attribute_spans(masked)
    for match in _FUNCTION_WORDS.finditer(masked):
        modifiers = [m for m in (match.group(1), match.group(2)) if m]
        kind, already_legacy = match.group(3), match.group(4)
        if already_legacy or previous_token(masked, match.start()) == "inductive":
            continue
        if is_attribute_context(masked, match.start(), attributes):
            continue
        opaque = "opaque" in modifiers
        modifiers = [m for m in modifiers if m != "opaque"]
        if "least" in modifiers or "greatest" in modifiers:
            if kind == "function":
                continue
            least = "least" in modifiers
            text = {("predicate", True): "inductive predicate", ("predicate", False): "copredicate",
                    ("lemma", True): "inductive lemma", ("lemma", False): "colemma"}[(kind, least)]  # fmt: skip
        elif kind == "lemma":
            if not opaque:
                continue
            text = " ".join([*modifiers, kind])
        elif "ghost" in modifiers or "twostate" in modifiers:
            text = " ".join([m for m in modifiers if m != "ghost"] + [kind])
        else:
            text = f"{kind} method"
        if opaque:
            text += " {:opaque}"
        edits.append((match.start(), match.end(), text))
    return _apply(source, edits)


def attribute_spans(masked: str) -> list[tuple[int, int]]:
    """(start, end) of every attribute `{: ... }` (outermost ones), in order."""
    spans: list[tuple[int, int]] = []
    for match in re.finditer(r"\{\s*:", masked):
        if spans and match.start() < spans[-1][1]:
            continue  # inside an attribute already found
        close = closing_bracket(masked, match.start())
        spans.append((match.start(), len(masked) if close is None else close + 1))
    return spans


def is_attribute_context(masked: str, at: int, spans: list[tuple[int, int]] | None = None) -> bool:
    """Whether offset `at` lies inside an attribute `{: ... }`."""
    spans = attribute_spans(masked) if spans is None else spans
    index = bisect.bisect_right(spans, (at, len(masked) + 1)) - 1
    return index >= 0 and spans[index][0] <= at < spans[index][1]


# ------------------------------------------------------------------------------- for loops
_FOR = re.compile(_WORD_BEFORE + r"for\s+(" + _NAME + r")\s*(:\s*[A-Za-z_][A-Za-z0-9_<>, ]*?)?\s*:=\s*")
_DIRECTION = re.compile(_WORD_BEFORE + r"(to|downto)" + _WORD_AFTER)
_LOOP_CLAUSE = re.compile(_WORD_BEFORE + r"(invariant|decreases|modifies)" + _WORD_AFTER)
# legacy loop specifications may end in `;` (`invariant P;`): the header goes on after one
_AFTER_CLAUSE = re.compile(r"\s*(invariant|decreases|modifies|\{)")


def _header_parts(masked: str, start: int) -> tuple[int, int, str] | None:
    """For `lo to hi` after `:=`: (offset of the direction word, its end, the word)."""
    for k, c in _iter_top_level(masked, start, len(masked)):
        match = _DIRECTION.match(masked, k)
        if match:
            return match.start(), match.end(), match.group(1)
        if c in ";)]}":
            return None
    return None


def _body_brace(masked: str, start: int) -> int | None:
    for k, c in _iter_top_level(masked, start, len(masked)):
        if c == "{" and opens_block(masked, k, start):
            return k
        if c in ")]}" or c == ";" and not _AFTER_CLAUSE.match(masked, k + 1):
            return None  # a statement ended: this was no loop header
    return None


def _for_edit(source: str, masked: str, match: re.Match[str]) -> tuple[int, int, str] | None:
    """The edit turning the `for` loop at `match` into a block with a `while` loop, or None."""
    header = _header_parts(masked, match.end())
    if header is None:
        return None
    to_start, to_end, direction = header
    brace = _body_brace(masked, to_end)
    if brace is None:
        return None
    close = closing_bracket(masked, brace)
    if close is None:
        return None
    name, type_text = match.group(1), (match.group(2) or "").strip()
    # bounds without their comments (a `//` inside the new one-line header would swallow the rest)
    low_text = _flat(source[match.end() : to_start])
    # the bound ends where the loop's specification clauses start (or at the body)
    spec_match = _LOOP_CLAUSE.search(masked, to_end, brace)
    bound_end = spec_match.start() if spec_match else brace
    high_text = _flat(source[to_end:bound_end])
    if not low_text or not high_text or high_text == "*" or low_text == "*":
        return None  # `for i := lo to *` (an unbounded loop) has no while form with these bounds
    # the header's newlines, then the clauses as written: error line numbers still match
    header_text = source[match.start() : bound_end]
    kept = header_text.rstrip()
    specs = _newlines(kept) + header_text[len(kept) :] + source[bound_end:brace]
    body = source[brace + 1 : close]
    declared = f"var {name}{(' ' + type_text) if type_text else ''} := "
    if direction == "to":
        low, high = low_text, high_text
        head = f"{{ {declared}{low}; while {name} < {high} invariant {low} <= {name} <= {high}{specs}{{"
        new_body = f"{body}{name} := {name} + 1; }} }}"
    else:
        high, low = low_text, high_text
        head = f"{{ {declared}{high}; while {low} < {name} invariant {low} <= {name} <= {high}{specs}{{ "
        head += f"{name} := {name} - 1;"
        new_body = f"{body}}} }}"
    return match.start(), close + 1, head + new_body


def rewrite_for_loops(source: str, *, deadline: float | None = None) -> str:
    """Every `for` loop as a `while` loop (see the module docstring). Each pass rewrites every loop
    whose body holds no other loop, so nested loops take one pass per level."""
    for _ in range(MAX_PASSES):
        _check(deadline)
        masked = mask(source)
        candidates = []
        for match in _FOR.finditer(masked):
            edit = _for_edit(source, masked, match)
            if edit is not None:
                candidates.append((edit[0], edit[1], edit))
        if not candidates:
            return source
        # only loops that contain no other candidate: the inner one is rewritten first
        starts = sorted(c[0] for c in candidates)
        inner = [c[2] for c in candidates
                 if bisect.bisect_left(starts, c[1]) - bisect.bisect_right(starts, c[0]) == 0]  # fmt: skip
        source = _apply(source, inner)
    return source


# ------------------------------------------------------------------------------- literal matches
_MATCH = re.compile(_WORD_BEFORE + r"match" + _WORD_AFTER)
_CASE = re.compile(_WORD_BEFORE + r"case" + _WORD_AFTER)
_LITERAL = re.compile(r"""-?\s*\d+|true|false|'(?:\\u[0-9a-fA-F]{4}|\\.|[^\\'\n])'|"(?:\\.|[^"\\])*\"""")
_BINDER = re.compile(_NAME)
_STATEMENT_WORD = re.compile(r"\s*(return|print|while|for|modify|label|break|continue|yield|reveal|new)\b")


def _region_end(masked: str, start: int) -> int:
    """Where an unbraced `match` ends: at the bracket that closes the enclosing one."""
    spans = deque(_top_level_spans(masked, start, len(masked)), maxlen=1)
    if spans and masked[spans[0][1] - 1 : spans[0][1]] in (")", "]", "}"):
        return spans[0][1] - 1
    return len(masked)


def _tail_kind(text: str, top: str) -> str | None:
    """'statement', 'expression' or None for code without a top-level `;` (masked; `top` its
    depth-0 characters)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        return "statement" if (";" in text or ":=" in text) else None  # a block, or a set display
    if _STATEMENT_WORD.match(text):
        return "statement"
    if re.match(r"\s*if" + _WORD_AFTER, text):
        return "expression" if re.search(r"\bthen\b", top) else "statement"
    if re.match(r"\s*forall" + _WORD_AFTER, text):
        return "expression" if "::" in top else "statement"
    if ":=" in top:
        return None
    return "expression"


def _case_kind(body: str) -> str | None:
    """Whether a case body (masked) is a statement list, an expression, or neither can be told."""
    if not body.strip():
        return "statement"
    top = "".join(c for _, c in _iter_top_level(body, 0, len(body)))
    if ";" not in top:
        return _tail_kind(body, top)
    # statements end in `;` (or a block); a let or assert expression goes on after its `;`
    last_semicolon = max(k for k, c in _iter_top_level(body, 0, len(body)) if c == ";")
    tail = body[last_semicolon + 1 :]
    if not tail.strip():
        return "statement"
    tail_top = "".join(c for _, c in _iter_top_level(tail, 0, len(tail)))
    return _tail_kind(tail, tail_top)


def _literal_match_edits(source: str, masked: str, at: re.Match[str]) -> list[tuple[int, int, str]] | None:
    """The edits turning the `match` at `at` into an if-chain, or None when it is not a match on
    literals this rewrite understands (patterns: literals, `|` of literals, `_`, a final binder; case
    bodies all statements or all expressions)."""
    head_end, braced = None, False
    for k, c in _iter_top_level(masked, at.end(), len(masked)):
        if c == "{":
            if is_attribute(masked, k):
                return None
            head_end, braced = k, True
            break
        if c in ";)]}":
            return None
        if _CASE.match(masked, k):
            head_end = k
            break
    if head_end is None:
        return None
    scrutinee = source[at.end() : head_end].strip()
    if not scrutinee:
        return None
    if not _BINDER.fullmatch(scrutinee):
        scrutinee = f"({_flat(scrutinee)})"
    region_start = head_end + 1 if braced else head_end
    if braced:
        region_end = closing_bracket(masked, head_end)
        if region_end is None:
            return None
    else:
        region_end = _region_end(masked, region_start)
    starts = [k for k, _ in _iter_top_level(masked, region_start, region_end) if _CASE.match(masked, k)]
    if not starts or masked[region_start : starts[0]].strip():
        return None
    cases = []  # (case start, arrow end, condition or None for a wildcard, binder or None, body)
    for i, start in enumerate(starts):
        arrow = masked.find("=>", start, region_end)
        body_end = starts[i + 1] if i + 1 < len(starts) else region_end
        if arrow < 0 or arrow > body_end:
            return None
        body = masked[arrow + 2 : body_end]
        if _MATCH.search(body):
            return None  # a nested match would take the later cases
        pattern = masked[start + 4 : arrow]
        if "{" in pattern:
            return None  # an attribute, or something else no pattern holds
        alternatives = [a.strip() for a in source[start + 4 : arrow].split("|")]
        if len(alternatives) == 1 and alternatives[0] == "_":
            cases.append((start, arrow + 2, None, None, body))
        elif (
            len(alternatives) == 1
            and _BINDER.fullmatch(alternatives[0])
            and alternatives[0] not in ("true", "false")
        ):
            if i + 1 != len(starts):
                return None
            cases.append((start, arrow + 2, None, alternatives[0], body))
        elif all(_LITERAL.fullmatch(a) for a in alternatives):
            condition = " || ".join(f"{scrutinee} == {a.replace(' ', '')}" for a in alternatives)
            cases.append((start, arrow + 2, condition, None, body))
        else:
            return None
    if all(c[2] is None for c in cases):
        return None  # no literal pattern: legacy Dafny reads it as it is
    kinds = {_case_kind(body) for *_, body in cases} - {None}
    if len(kinds) != 1:
        return None  # statements and expressions mixed, or nothing to tell them apart by
    statement = kinds == {"statement"}
    edits: list[tuple[int, int, str]] = []
    for i, (start, arrow_end, condition, binder, _) in enumerate(cases):
        first, last = i == 0, i == len(cases) - 1
        span_start = at.start() if first else start
        keep = _newlines(source[span_start:arrow_end])
        if statement:
            if condition is None:
                text = "if true {" if first else "} else {"
            else:
                text = ("if " if first else "} else if ") + condition + " {"
            if binder:
                text += f" var {binder} := {scrutinee};"
        else:
            opening = "(" if first else ") else "
            # the last case of an exhaustive match needs no test
            test = "" if condition is None or last else f"if {condition} then "
            text = opening + test + "("
            if binder:
                text += f"var {binder} := {scrutinee}; "
        edits.append((span_start, arrow_end, text + keep))
    if statement:
        if not braced:
            edits.append((region_end, region_end, "} "))
    else:
        closing = "))"  # the last body's paren and the whole expression's
        if braced:
            edits.append((region_end, region_end + 1, closing))
        else:
            edits.append((region_end, region_end, closing + " "))
    return edits


def rewrite_literal_matches(source: str, *, deadline: float | None = None) -> str:
    """`match` on literal patterns (`case 0 =>`, `case 'a' | 'b' =>`; Dafny 3+) as an if-chain: an
    if-then-else expression or an if-else statement, the last case of an expression as its `else`.
    Each pass rewrites every match that holds no other match (one pass per nesting level)."""
    for _ in range(MAX_PASSES):
        _check(deadline)
        masked = mask(source)
        candidates = []
        for at in _MATCH.finditer(masked):
            edits = _literal_match_edits(source, masked, at)
            if edits:
                candidates.append((min(e[0] for e in edits), max(e[1] for e in edits), edits))
        if not candidates:
            return source
        source = _apply(source, [edit for edits in _innermost(candidates) for edit in edits])  # type: ignore[union-attr]
    return source


# ------------------------------------------------------------------------------- by method
_BY_METHOD = re.compile(_WORD_BEFORE + r"by\s+method" + _WORD_AFTER)
_FUNCTION_HEAD = re.compile(
    _WORD_BEFORE
    + r"(?:function|predicate)(?:\s+method)?\s+(?:\{:[^}]*\}\s*)*("
    + _NAME
    + r")\s*(<[^>(]*>)?\s*\("
)
_FUNCTION_CLAUSE = re.compile(r"\b(requires|reads|ensures|decreases)\b")


def rewrite_by_method(source: str) -> str:
    """`function F(x) ... { E } by method { S }` (Dafny 3.1+) -> the function, and the by-method body as
    a method `F__by_method(x) returns (r) requires ... ensures r == F(x) { S }`: the proof obligation
    the verifier gives a by-method body, written on the `by method` line."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    heads = list(_FUNCTION_HEAD.finditer(masked))
    head_ends = [h.end() for h in heads]
    for by in _BY_METHOD.finditer(masked):
        if previous_token(masked, by.start()) != "}":
            continue
        close = masked.rfind("}", 0, by.start())
        index = bisect.bisect_right(head_ends, close) - 1
        if index < 0:
            continue
        head = heads[index]
        params_close = closing_bracket(masked, head.end() - 1)
        if params_close is None or params_close > close:
            continue
        # the body's `{`: the first block-opening brace after the header
        body = next(
            (k for k in range(params_close, close) if masked[k] == "{" and opens_block(masked, k)), None
        )
        if body is None or closing_bracket(masked, body) != close:
            continue
        name, type_params = head.group(1), head.group(2) or ""
        params = source[head.end() : params_close]
        names = []
        for part in _split_top_level(params):
            declared = re.match(r"\s*(?:ghost\s+|nameonly\s+)*(" + _NAME + r")\s*:", part)
            if declared:
                names.append(declared.group(1))
        after = masked[params_close + 1 : body]
        result = re.match(r"\s*:\s*\(\s*(" + _NAME + r")\s*:", after)
        if result:
            result_name = result.group(1)
            result_close = closing_bracket(masked, params_close + 1 + after.index("("))
            if result_close is None:
                continue
            result_type = source[params_close + 1 + result.end() : result_close]
        elif after.lstrip().startswith(":"):
            result_name = "r__"
            colon = params_close + 1 + after.index(":") + 1
            clauses = _FUNCTION_CLAUSE.search(masked, colon, body)
            result_type = source[colon : clauses.start() if clauses else body]
        else:
            result_name, result_type = "r__", "bool"  # a predicate
        requires = []
        for clause in re.finditer(r"\brequires\b", after):
            start = params_close + 1 + clause.start()
            requires.append(_flat(source[start : clause_end(masked, start)]).rstrip(";"))
        call_args = ", ".join(names)
        text = (f"method {name}__by_method{type_params}({_flat(params)}) returns ({result_name}: {_flat(result_type)}) "
                f"{' '.join(requires)} ensures {result_name} == {name}({call_args})")  # fmt: skip
        edits.append((by.start(), by.end(), text + _newlines(source[by.start() : by.end()])))
    return _apply(source, edits)


def _split_top_level(text: str) -> list[str]:
    """`text` split at its commas of bracket depth 0; `<>` count as brackets (in `map<K, V>`), which is
    why this reads declarations only, never expressions (where `<` compares)."""
    parts, depth, start = [], 0, 0
    for k, c in enumerate(text):
        if c in "([{<":
            depth += 1
        elif c in ")]}>":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    return [*parts, text[start:]]


# ------------------------------------------------------------------------------- tuple sub-patterns
_CONSTRUCTOR_PATTERN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_'?.]*\s*\(")
_ARROW = re.compile(r"\s*=>")
_PATTERN_TOKEN = re.compile(_NAME + r"|[(),]|\S")


def _is_name_tuple(masked: str, open_at: int, close: int) -> bool:
    """Whether the tuple pattern in [open_at, close] holds only names, `_` and nested tuples of them:
    what a `var (...) := t;` can take apart (a literal or a constructor it cannot)."""
    previous = ""
    for token in _PATTERN_TOKEN.findall(masked, open_at, close + 1):
        if token == "(" and previous not in ("", "(", ","):
            return False  # a constructor's arguments
        if token not in "()," and (not re.fullmatch(_NAME, token) or token in ("true", "false", "null")):
            return False
        previous = token
    return True


def rewrite_tuple_subpatterns(source: str) -> str:
    """A tuple inside a constructor pattern (`case Some((k, v)) => E`; Dafny 2.3 crashes on it) is bound
    to a fresh variable and taken apart first: `case Some(tuple__1) => var (k, v) := tuple__1; E`. Only
    tuples of names (and `_`, and nested tuples of names) are rewritten: a `var` cannot test a literal."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    fresh = 0
    for case in _CASE.finditer(masked):
        constructor = _CONSTRUCTOR_PATTERN.match(masked, case.end())
        if not constructor:
            continue
        open_at = constructor.end() - 1
        close = closing_bracket(masked, open_at)
        if close is None:
            continue
        arrow = _ARROW.match(masked, close + 1)
        if not arrow:
            continue
        lets = []
        for k, c in _top_level(masked, open_at + 1, close):
            if c != "(" or _char_before(masked, k) not in "(,":
                continue  # not a tuple: a nested constructor's arguments
            inner_close = closing_bracket(masked, k)
            if inner_close is None:
                break
            if not any(t == "," for _, t in _iter_top_level(masked, k + 1, inner_close)):
                continue  # `()` or a parenthesized pattern
            if not _is_name_tuple(masked, k, inner_close):
                lets = []
                break  # a literal or a constructor inside the tuple: a `var` cannot take it apart
            fresh += 1
            name = f"tuple__{fresh}"
            end = inner_close + 1
            edits.append((k, end, name + _newlines(source[k:end])))
            lets.append(f"var {_flat(source[k:end])} := {name};")
        else:
            if lets:
                edits.append((arrow.end(), arrow.end(), " " + " ".join(lets)))
            continue
        # refused: drop the edits this case made
        edits = [e for e in edits if not open_at < e[0] < close]
    return _apply(source, edits)


# ------------------------------------------------------------------------------- datatype members
_DATATYPE = re.compile(_WORD_BEFORE + r"(?:co)?datatype\s+(" + _NAME + r")\s*(<[^>=]*>)?\s*=")
_CONSTRUCTORS_STOP = re.compile(
    r"[{}]|"
    + _WORD_BEFORE
    + r"(datatype|codatatype|function|predicate|lemma|method|ghost|module|class|const|"
    r"type|import|trait|iterator|newtype|static|include)" + _WORD_AFTER
)
_MEMBER = re.compile(
    _WORD_BEFORE + r"(static\s+)?((?:ghost\s+)?(?:function|predicate|lemma|method)(?:\s+method)?)\s+"
    r"(?:\{:[^}]*\}\s*)*(" + _NAME + r")\s*(<[^>(]*>)?\s*\("
)
# modifiers a member may carry before what _MEMBER matches (the function-syntax rewrite reads them)
_MEMBER_MODIFIER = re.compile(r"(?<![A-Za-z0-9_'?])(?:(?:opaque|least|greatest|twostate)\s+)+\Z")
_MEMBER_WORD = re.compile(
    _WORD_BEFORE + r"(const|var|type|constructor|iterator|class|trait|datatype|codatatype|newtype|module|"
    r"import|function|predicate|lemma|method|ghost|static|opaque|least|greatest|twostate|inductive|"
    r"copredicate|colemma)" + _WORD_AFTER
)
_IDENTIFIER = re.compile(_WORD_BEFORE + _NAME)
_DECLARED_TYPE = re.compile(_WORD_BEFORE + r"(" + _NAME + r")\s*:\s*([A-Za-z_][A-Za-z0-9_]*)")
_AFTER_ASSIGN = re.compile(r"\s*:=")
_AFTER_OPEN = re.compile(r"\s*\(")


def _constructors_end(masked: str, start: int) -> int:
    """End of a datatype's constructor list starting at `start`: its members block's `{`, or the next
    declaration (or closing brace) at depth 0."""
    for a, b in _top_level_spans(masked, start, len(masked)):
        for found in _CONSTRUCTORS_STOP.finditer(masked, a, b):
            if found.group(0) != "{" or not is_attribute(masked, found.start()):
                return found.start()
    return len(masked)


def _members_understood(masked: str, block: int, close: int, members: list[re.Match[str]]) -> bool:
    """Whether every declaration word at the top level of a members block belongs to a member this
    rewrite moves (a function, predicate, lemma or method, with its modifiers)."""
    heads = []
    for member in members:
        window = max(block + 1, member.start() - 80)
        modifiers = _MEMBER_MODIFIER.search(masked[window : member.start()])
        heads.append((window + modifiers.start() if modifiers else member.start(), member.end()))
    heads.sort()
    starts = [h[0] for h in heads]
    words = (
        w for a, b in _top_level_spans(masked, block + 1, close) for w in _MEMBER_WORD.finditer(masked, a, b)
    )
    for word in words:
        k = word.start()
        index = bisect.bisect_right(starts, k) - 1
        if index < 0 or not heads[index][0] <= k < heads[index][1]:
            return False
    return True


def _datatype_members(masked: str) -> list[dict]:
    """Datatypes with a members block `{ ... }` after their constructors (Dafny 3+) that this rewrite
    understands (see `_members_understood`)."""
    found = []
    for decl in _DATATYPE.finditer(masked):
        block = _constructors_end(masked, decl.end())
        if masked[block : block + 1] != "{":
            continue
        close = closing_bracket(masked, block)
        if close is None:
            continue
        members = list(_MEMBER.finditer(masked, block + 1, close))
        if not members or not _members_understood(masked, block, close, members):
            continue  # members this rewrite does not move: the block stays, for the verifier to report
        fields = set()
        for ctor_args in re.finditer(r"\(([^()]*)\)", masked[decl.end() : block]):
            fields.update(re.findall(r"(" + _NAME + r")\s*:", ctor_args.group(1)))
        found.append({"name": decl.group(1), "type_params": (decl.group(2) or "").strip(), "block": block,
                      "close": close, "fields": fields, "members": members})  # fmt: skip
    return found


def _receiver_start(masked: str, dot: int) -> int:
    """Start of the postfix expression ending just before the `.` at `dot` (`v`, `v.f`, `a[i].g(x)`)."""
    k = dot
    while k > 0:
        c = masked[k - 1]
        if IDENT_CHAR.match(c) or c == ".":
            k -= 1
        elif c in ")]":
            depth, j = 0, k - 1
            while j >= 0:
                if masked[j] in ")]}":
                    depth += 1
                elif masked[j] in "([{":
                    depth -= 1
                    if depth == 0:
                        break
                j -= 1
            if j < 0:
                return k  # no opening bracket: not a receiver this rewrite reads
            k = j
        else:
            break
    return k


def _argument_count(masked: str, open_at: int) -> int:
    close = matching_brace(masked, open_at)
    inner = masked[open_at + 1 : close]
    if not inner.strip():
        return 0
    return 1 + _top_level_count(inner, 0, len(inner), ",")


def _bound_names(text: str) -> set[str]:
    """Names a member body binds (parameters, `var`s, pattern, quantifier, comprehension and lambda
    variables): a bare field name among them is the bound one, not `this.field`."""
    bound = set(re.findall(r"(" + _NAME + r")\s*:(?![=|:])", text))
    for declared in re.finditer(_WORD_BEFORE + r"var\s+(\(?[^:;=]*)", text):  # `var a, b :=`, `var (a, b) :=`
        bound |= set(re.findall(_NAME, declared.group(1)))
    for case in re.finditer(_WORD_BEFORE + r"case([^=]*)=>", text):
        bound |= set(re.findall(_NAME, case.group(1)))
    for q in re.finditer(
        _WORD_BEFORE + r"(?:forall|exists|set|iset|map|imap)\s+(?=[A-Za-z_(])([^:|{]*)", text
    ):
        bound |= set(re.findall(_NAME, q.group(1)))
    for lam in re.finditer(r"(" + _NAME + r")\s*=>|\(([^()]*)\)\s*=>", text):  # `x => E`, `(x, y) => E`
        bound |= set(re.findall(_NAME, lam.group(1) or lam.group(2)))
    return bound


def rewrite_datatype_members(source: str, *, deadline: float | None = None) -> str:
    """Members of a datatype (`datatype D = ... { predicate P(x) { ... this ... } }`, Dafny 3+) as top-level
    declarations `D__P(this__: D, x)`; `e.P(a)` -> `D__P(e, a)`, `this` and bare fields/members inside
    the bodies through `this__`. Static members drop the receiver. Overloaded member names across
    datatypes are told apart by argument count, then by the receiver's declared type."""
    masked = mask(source)
    datatypes = _datatype_members(masked)
    if not datatypes:
        return source
    owners: dict[str, list[tuple[str, bool, int]]] = {}  # member -> (datatype, static, arity)
    for d in datatypes:
        for m in d["members"]:
            owners.setdefault(m.group(3), []).append(
                (d["name"], bool(m.group(1)), _argument_count(masked, m.end() - 1))
            )

    # 1. call sites `receiver.member(`: each pass rewrites those whose receiver holds no other one
    for _ in range(MAX_PASSES):
        _check(deadline)
        masked = mask(source)
        declarations: dict[str, tuple[list[int], list[str]]] = {}
        for declared in _DECLARED_TYPE.finditer(masked):
            positions, types = declarations.setdefault(declared.group(1), ([], []))
            positions.append(declared.start())
            types.append(declared.group(2))
        candidates = []
        for m in re.finditer(r"\.\s*(" + _NAME + r")\s*\(", masked):
            name = m.group(1)
            if name not in owners or masked[m.start() - 1 : m.start()] in ("", " ", "\n"):
                continue
            start = _receiver_start(masked, m.start())
            receiver = source[start : m.start()]
            if not receiver or not IDENT_CHAR.match(masked[start]) and masked[start] not in "(":
                continue
            owner = _owner_of(
                owners[name], receiver, _argument_count(masked, m.end() - 1), declarations, start
            )
            if owner is None:
                continue
            static = any(s for d, s, _ in owners[name] if d == owner)
            empty = not masked[m.end() : matching_brace(masked, m.end() - 1)].strip()
            target = f"{owner}__{name}("
            text = target if static else target + receiver + ("" if empty else ", ")
            candidates.append((start, m.end(), (start, m.end(), text + _newlines(source[start : m.end()]))))
        if not candidates:
            break
        source = _apply(source, _innermost(candidates))  # type: ignore[arg-type]
    # 2. the declarations, `this` and bare names inside them
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    for d in _datatype_members(masked):
        _check(deadline)
        edits.append((d["block"], d["block"] + 1, " "))
        edits.append((d["close"], d["close"] + 1, " "))
        names = {m.group(3) for m in d["members"]}
        self_type = d["name"] + d["type_params"]
        bounds = d["members"][1:] + [None]
        for m, following in zip(d["members"], bounds):
            static, kind, name, own_params = m.group(1), m.group(2), m.group(3), m.group(4)
            end = following.start() if following else d["close"]
            params = d["type_params"][1:-1]
            if own_params:
                params = ", ".join(p for p in (params, own_params[1:-1]) if p)
            type_params = f"<{params}>" if params else ""
            empty = not masked[m.end() : matching_brace(masked, m.end() - 1)].strip()
            head = f"{kind} {d['name']}__{name}{type_params}("
            if not static:
                head += f"this__: {self_type}" + ("" if empty else ", ")
            edits.append((m.start(), m.end(), head + _newlines(source[m.start() : m.end()])))
            if static:
                continue
            bound = _bound_names(masked[m.end() : end])
            for ident in _IDENTIFIER.finditer(masked, m.end(), end):
                word, at = ident.group(0), ident.start()
                if word == "this":
                    edits.append((at, ident.end(), "this__"))
                elif (
                    _char_before(masked, at) == "."
                    or _AFTER_ASSIGN.match(masked, ident.end())
                    or word in bound
                ):
                    continue
                elif word in names and _AFTER_OPEN.match(masked, ident.end()):
                    open_at = masked.index("(", ident.end())
                    empty = not masked[open_at + 1 : matching_brace(masked, open_at)].strip()
                    edits.append((at, open_at + 1, f"{d['name']}__{word}(this__" + ("" if empty else ", ")))
                elif word in d["fields"]:
                    edits.append((at, ident.end(), f"this__.{word}"))
    return _apply(source, edits)


def _owner_of(owners: list[tuple[str, bool, int]], receiver: str, count: int,
              declarations: dict[str, tuple[list[int], list[str]]], at: int) -> str | None:  # fmt: skip
    """The datatype whose member a call `receiver.member(...)` with `count` arguments calls, if known."""
    static = [d for d, s, _ in owners if s and receiver == d]
    if static:
        return static[0]
    candidates = [d for d, s, arity in owners if not s and arity == count]
    if len(candidates) == 1:
        return candidates[0]
    base = re.match(_NAME, receiver)
    if base and candidates and base.group(0) in declarations:
        # the receiver's declared type, nearest declaration first
        positions, types = declarations[base.group(0)]
        index = bisect.bisect_left(positions, at) - 1
        if index >= 0 and types[index] in candidates:
            return types[index]
    return None


# ------------------------------------------------------------------------------- named arguments
def rewrite_named_constructor_arguments(source: str, *, deadline: float | None = None) -> str:
    """`C(y := 1, x := 2)` (Dafny 3+ named arguments) -> `C(2, 1)` for a datatype constructor `C(x, y)`.
    Each pass rewrites the calls whose arguments hold no other such call."""
    masked = mask(source)
    constructors: dict[str, list[str]] = {}
    ambiguous: set[str] = set()
    for decl in _DATATYPE.finditer(masked):
        k = _constructors_end(masked, decl.end())
        for ctor in re.finditer(r"(" + _NAME + r")\s*\(([^()]*)\)", masked[decl.end() : k]):
            names = [
                re.match(r"\s*(?:ghost\s+)?(" + _NAME + r")\s*:", part)
                for part in _split_top_level(ctor.group(2))
            ]
            params = [n.group(1) for n in names if n]
            if ctor.group(1) in constructors and constructors[ctor.group(1)] != params:
                ambiguous.add(ctor.group(1))  # two datatypes' constructors of one name: not told apart here
            if all(names):
                constructors[ctor.group(1)] = params
    for name in ambiguous:
        constructors.pop(name, None)
    if not constructors:
        return source
    call_pattern = re.compile(_WORD_BEFORE + r"(" + "|".join(map(re.escape, constructors)) + r")\s*\(")
    for _ in range(MAX_PASSES):
        _check(deadline)
        candidates = []
        for call in call_pattern.finditer(masked):
            edit = _positional(source, masked, call, constructors[call.group(1)])
            if edit:
                candidates.append((edit[0], edit[1], edit))
        if not candidates:
            return source
        source = _apply(source, _innermost(candidates))  # type: ignore[arg-type]
        masked = mask(source)
    return source


def _positional(
    source: str, masked: str, call: re.Match[str], params: list[str]
) -> tuple[int, int, str] | None:
    """The edit putting the named arguments of a constructor call in positional order, if it has any."""
    open_at = call.end() - 1
    close = closing_bracket(masked, open_at)
    if close is None:
        return None
    cuts = [open_at] + [k for k, c in _iter_top_level(masked, open_at + 1, close) if c == ","] + [close]
    given: dict[str, str] = {}
    positional: list[str] = []
    for a, b in zip(cuts, cuts[1:]):
        named = re.match(r"\s*(" + _NAME + r")\s*:=", masked[a + 1 : b])
        if named:
            if named.group(1) in given:
                return None  # the same name twice: not a call this rewrite understands
            given[named.group(1)] = source[a + 1 + named.end() : b].strip()
        elif given:
            return None  # a positional argument after a named one
        else:
            positional.append(source[a + 1 : b].strip())
    if not given or set(given) - set(params) or len(positional) + len(given) != len(params):
        return None
    ordered = positional + [given[p] for p in params[len(positional) :] if p in given]
    if len(ordered) != len(params):
        return None
    return open_at + 1, close, ", ".join(_flat(a) for a in ordered) + _newlines(source[open_at:close])


# ------------------------------------------------------------------------------- imports, small forms
def wrap_top_level_imports(source: str) -> str:
    """Dafny 4 lets the default module `import` others; legacy Dafny does not. The whole program (after
    its `include`s) goes into one module, written on existing lines so error line numbers still match.
    An import it does not understand (`import X : Y`, `import X as Y`) leaves the program as it is."""
    masked = mask(source)
    depth, imports = 0, []
    pattern = r"[{}]|" + _WORD_BEFORE + r"import\s+(opened\s+)?([A-Za-z_][A-Za-z0-9_.]*)" + _WORD_AFTER
    for match in re.finditer(pattern, masked):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
            after = masked[match.end() : match.end() + 40].lstrip()
            if after.startswith("=") and not after.startswith("=="):
                continue  # `import A = B`: already in the legacy form
            if after.startswith(":") or re.match(r"as" + _WORD_AFTER, after):
                return source  # an abstract import: not a form this rewrite understands
            imports.append(match)
    if not imports:
        return source
    # inside the wrapper, a sibling module's own name is taken: import it under an alias
    edits = [(m.start(), m.end(), f"import {m.group(1) or ''}{m.group(2).replace('.', '_')}__legacy = {m.group(2)}")
             for m in imports]  # fmt: skip
    source = _apply(source, edits)
    includes = list(re.finditer(_WORD_BEFORE + r"include\s+\"[^\"\n]*\"", mask(source, literals=False)))
    at = includes[-1].end() if includes else 0
    return source[:at] + " module LegacyMain__ { " + source[at:] + "\n}\n"


def rewrite_small_forms(source: str) -> str:
    """Smaller Dafny 3/4 forms: `expect E[, msg];` (the verifier assumes E) -> `assume E;`; the
    nonempty type characteristic `T(00)` -> `T(0)`; a refined class `class C ... {` -> `class C {`."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    attributes = attribute_spans(masked)
    for match in re.finditer(_WORD_BEFORE + r"expect" + _WORD_AFTER, masked):
        if is_attribute_context(masked, match.start(), attributes):
            continue
        end = statement_end(masked, match.end())
        if masked[end - 1 : end] != ";":
            continue
        end -= 1  # the `;` itself stays
        # drop the message: the first top-level comma
        comma = next((k for k, c in _iter_top_level(masked, match.end(), end) if c == ","), None)
        edits.append((match.start(), match.end(), "assume"))
        if comma is not None:
            edits.append((comma, end, ""))
    for match in re.finditer(r"\(\s*00\s*\)", masked):
        edits.append((match.start(), match.end(), "(0)"))
    for match in re.finditer(_WORD_BEFORE + r"class\s+" + _NAME + r"\s*(<[^>{]*>)?(\s*\.\.\.)", masked):
        edits.append((match.start(2), match.end(2), ""))
    return _apply(source, edits)


# ------------------------------------------------------------------------------- the layer
_REWRITES: tuple[Callable[..., str], ...] = (
    rewrite_named_constructor_arguments,
    rewrite_datatype_members,
    rewrite_function_syntax,
    rewrite_for_loops,
    rewrite_literal_matches,
    rewrite_tuple_subpatterns,
    rewrite_by_method,
    rewrite_small_forms,
    wrap_top_level_imports,
)
_TAKES_DEADLINE = {rewrite_named_constructor_arguments, rewrite_datatype_members, rewrite_for_loops,
                   rewrite_literal_matches}  # fmt: skip


def to_legacy(source: str, *, deadline: float | None = None) -> str:
    """A Dafny 4 program in the syntax Dafny 2.x/3.x accept (see the module docstring). A program with
    unbalanced brackets (a model's answer may be one) is returned as it is, for the verifier's own
    parse error; a rewrite that meets text it cannot read leaves the program as that rewrite found it.
    `deadline` (a `time.monotonic()` value): past it, `CompatTimeout` is raised."""
    _check(deadline)
    if not _balanced(mask(source)):
        return source
    for rewrite in _REWRITES:
        _check(deadline)
        try:
            rewritten = rewrite(source, deadline=deadline) if rewrite in _TAKES_DEADLINE else rewrite(source)
        except (ValueError, IndexError):  # text the rewrite's reading of brackets did not foresee
            continue
        if rewritten.count("\n") != source.count("\n") and rewrite is not wrap_top_level_imports:
            continue  # every rewrite keeps the line count; one that did not misread the program
        source = rewritten
    return source
