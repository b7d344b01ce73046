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
- smaller forms: `expect E;` -> `assume E;` (what the verifier makes of it), `T(00)` -> `T(0)`,
  `class C ... {` (a refined class) -> `class C {`.

Every rewrite keeps the line count, so the verifier's error positions point at the user's program.

Positions are found in `source.mask(...)`, so keywords in comments and strings are left alone.
"""

from __future__ import annotations

import re

from intelligible.dafnybench.source import mask, matching_brace, opens_block, statement_end

_WORD_BEFORE = r"(?<![A-Za-z0-9_'?.])"
_WORD_AFTER = r"(?![A-Za-z0-9_'?])"


def _apply(source: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace spans (start, end, text), given in any order and not overlapping."""
    for start, end, text in sorted(edits, reverse=True):
        source = source[:start] + text + source[end:]
    return source


def rewrite_function_syntax(source: str) -> str:
    """Dafny 4 function/predicate modifiers in the pre-4 spelling (see the module docstring)."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    pattern = re.compile(
        _WORD_BEFORE + r"(?:(ghost|least|greatest|twostate|opaque)\s+)?(?:(ghost|opaque)\s+)?"
        r"(function|predicate|lemma)" + _WORD_AFTER + r"(\s+method" + _WORD_AFTER + r")?"
    )
    for match in pattern.finditer(masked):
        modifiers = [m for m in (match.group(1), match.group(2)) if m]
        kind, already_legacy = match.group(3), match.group(4)
        if already_legacy:
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


_FOR = re.compile(
    _WORD_BEFORE + r"for\s+([A-Za-z_][A-Za-z0-9_'?]*)\s*(:\s*[A-Za-z_][A-Za-z0-9_<>, ]*?)?\s*:=\s*"
)


_DIRECTION = re.compile(_WORD_BEFORE + r"(to|downto)" + _WORD_AFTER)


def _header_parts(masked: str, start: int) -> tuple[int, int, str] | None:
    """For `lo to hi` after `:=`: (offset of the direction word, its end, the word)."""
    depth = 0
    for k in range(start, len(masked)):
        c = masked[k]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0:
            match = _DIRECTION.match(masked, k)
            if match:
                return match.start(), match.end(), match.group(1)
            if c == ";":
                return None
    return None


def _body_brace(masked: str, start: int) -> int | None:
    depth = 0
    for k in range(start, len(masked)):
        c = masked[k]
        if c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif c == "{":
            if depth == 0 and opens_block(masked, k):
                return k
            depth += 1
        elif c == "}":
            depth -= 1
        elif c == ";" and depth == 0:
            return None
    return None


def rewrite_for_loops(source: str) -> str:
    """Every `for` loop as a `while` loop (see the module docstring); innermost rewrites compose."""
    for _ in range(100):  # one loop per pass, so nested loops see already-rewritten bodies
        masked = mask(source)
        rewritten = None
        for match in _FOR.finditer(masked):
            header = _header_parts(masked, match.end())
            if header is None:
                continue
            to_start, to_end, direction = header
            brace = _body_brace(masked, to_end)
            if brace is None:
                continue
            close = matching_brace(masked, brace)
            name, type_text = match.group(1), (match.group(2) or "").strip()
            low_text = source[match.end() : to_start].strip()
            spec_start = to_end
            # the bound ends where the loop's specification clauses start (or at the body)
            spec_match = re.compile(_WORD_BEFORE + r"(invariant|decreases|modifies)" + _WORD_AFTER).search(
                masked, to_end, brace
            )
            bound_end = spec_match.start() if spec_match else brace
            raw_high = source[spec_start:bound_end]
            high_text = raw_high.strip()
            # keep every newline of the header and clauses, so error line numbers still match
            specs = raw_high[len(raw_high.rstrip()) :] + source[bound_end:brace]
            body = source[brace + 1 : close]
            declared = f"var {name}{(' ' + type_text) if type_text else ''} := "
            # same line count as the original: error line numbers must still point at the user's code
            if direction == "to":
                low, high = low_text, high_text
                head = (
                    f"{{ {declared}{low}; while {name} < {high} invariant {low} <= {name} <= {high}{specs}{{"
                )
                new_body = f"{body}{name} := {name} + 1; }} }}"
            else:
                high, low = low_text, high_text
                head = (
                    f"{{ {declared}{high}; while {low} < {name} invariant {low} <= {name} <= {high}{specs}{{ "
                )
                head += f"{name} := {name} - 1;"
                new_body = f"{body}}} }}"
            rewritten = source[: match.start()] + head + new_body + source[close + 1 :]
            break
        if rewritten is None:
            return source
        source = rewritten
    return source


def wrap_top_level_imports(source: str) -> str:
    """Dafny 4 lets the default module `import` others; legacy Dafny does not. The whole program (after
    its `include`s) goes into one module, written on existing lines so error line numbers still match."""
    masked = mask(source)
    depth, imports = 0, []
    pattern = (
        r"[{}]|"
        + _WORD_BEFORE
        + r"import\s+(opened\s+)?([A-Za-z_][A-Za-z0-9_.]*)"
        + _WORD_AFTER
        + r"(?!\s*=)"
    )
    for match in re.finditer(pattern, masked):
        token = match.group(0)
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        elif depth == 0:
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
    for match in re.finditer(_WORD_BEFORE + r"expect" + _WORD_AFTER, masked):
        end = statement_end(masked, match.end())
        if masked[end - 1 : end] != ";":
            continue
        end -= 1  # the `;` itself stays
        # drop the message: the first top-level comma
        depth, comma = 0, None
        for k in range(match.end(), end):
            c = masked[k]
            if c in "([{":
                depth += 1
            elif c in ")]}":
                depth -= 1
            elif c == "," and depth == 0:
                comma = k
                break
        edits.append((match.start(), match.end(), "assume"))
        if comma is not None:
            edits.append((comma, end, ""))
    for match in re.finditer(r"\(\s*00\s*\)", masked):
        edits.append((match.start(), match.end(), "(0)"))
    for match in re.finditer(
        _WORD_BEFORE + r"class\s+[A-Za-z_][A-Za-z0-9_'?]*\s*(<[^>{]*>)?(\s*\.\.\.)", masked
    ):
        edits.append((match.start(2), match.end(2), ""))
    return _apply(source, edits)


def to_legacy(source: str) -> str:
    """A Dafny 4 program in the syntax Dafny 2.x/3.x accept (see the module docstring)."""
    return wrap_top_level_imports(rewrite_small_forms(rewrite_for_loops(rewrite_function_syntax(source))))
