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

Positions are found in `source.mask(...)`, so keywords in comments and strings are left alone.
"""

from __future__ import annotations

import re

from intelligible.dafnybench.source import (
    IDENT_CHAR,
    clause_end,
    mask,
    matching_brace,
    opens_block,
    previous_token,
    statement_end,
)

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
    for k, c in _top_level(masked, start, len(masked)):
        match = _DIRECTION.match(masked, k)
        if match:
            return match.start(), match.end(), match.group(1)
        if c in ";)]}":
            return None
    return None


def _body_brace(masked: str, start: int) -> int | None:
    for k, c in _top_level(masked, start, len(masked)):
        if c == "{" and opens_block(masked, k):
            return k
        if c in ")]}" or c == ";" and not _AFTER_CLAUSE.match(masked, k + 1):
            return None  # a statement ended: this was no loop header
    return None


# legacy loop specifications may end in `;` (`invariant P;`): the header goes on after one
_AFTER_CLAUSE = re.compile(r"\s*(invariant|decreases|modifies|\{)")


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


_MATCH = re.compile(_WORD_BEFORE + r"match" + _WORD_AFTER)
_CASE = re.compile(_WORD_BEFORE + r"case" + _WORD_AFTER)
_LITERAL = re.compile(r"""-?\s*\d+|true|false|'(?:\\u[0-9a-fA-F]{4}|\\.|[^\\'\n])'|"(?:\\.|[^"\\])*\"""")
_BINDER = re.compile(r"[A-Za-z_][A-Za-z0-9_'?]*")


def _top_level(masked: str, start: int, end: int) -> list[tuple[int, str]]:
    """(offset, character) of every character in [start, end) at bracket depth 0 relative to `start`,
    opening brackets included; a bracket closing an enclosing one is the last entry."""
    depth, out = 0, []
    for k in range(start, end):
        c = masked[k]
        if depth == 0:
            out.append((k, c))
            if c in ")]}":
                break
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
    return out


def _region_end(masked: str, start: int) -> int:
    """Where an unbraced `match` ends: at the bracket that closes the enclosing one."""
    last = _top_level(masked, start, len(masked))[-1:]
    return last[0][0] if last and last[0][1] in ")]}" else len(masked)


def _newlines(text: str) -> str:
    return "\n" * text.count("\n")


def _literal_match_edits(source: str, masked: str, at: re.Match[str]) -> list[tuple[int, int, str]] | None:
    """The edits turning the `match` at `at` into an if-chain, or None when it is not a match on
    literals this rewrite understands (patterns: literals, `|` of literals, `_`, a final binder)."""
    head_end, braced = None, False
    for k, c in _top_level(masked, at.end(), len(masked)):
        if c == "{":
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
    if not _BINDER.fullmatch(scrutinee):
        scrutinee = f"({scrutinee})"
    region_start = head_end + 1 if braced else head_end
    region_end = matching_brace(masked, head_end) if braced else _region_end(masked, region_start)
    starts = [k for k, _ in _top_level(masked, region_start, region_end) if _CASE.match(masked, k)]
    if not starts or masked[region_start : starts[0]].strip():
        return None
    cases = []  # (case start, arrow end, condition or None for a wildcard, binder or None, body)
    for i, start in enumerate(starts):
        arrow = masked.find("=>", start, region_end)
        if arrow < 0:
            return None
        body_end = starts[i + 1] if i + 1 < len(starts) else region_end
        body = masked[arrow + 2 : body_end]
        if _MATCH.search(body):
            return None  # a nested match would take the later cases
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

    def is_statement(body: str) -> bool:
        top = "".join(c for _, c in _top_level(body, 0, len(body)))
        return not body.strip() or body.lstrip().startswith("{") or ";" in top or ":=" in top

    statement = any(is_statement(body) for *_, body in cases)
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


def rewrite_literal_matches(source: str) -> str:
    """`match` on literal patterns (`case 0 =>`, `case 'a' | 'b' =>`; Dafny 3+) as an if-chain: an
    if-then-else expression or an if-else statement, the last case of an expression as its `else`."""
    for _ in range(100):  # innermost (last) match first, one per pass
        masked = mask(source)
        for at in reversed(list(_MATCH.finditer(masked))):
            edits = _literal_match_edits(source, masked, at)
            if edits:
                source = _apply(source, edits)
                break
        else:
            return source
    return source


_BY_METHOD = re.compile(_WORD_BEFORE + r"by\s+method" + _WORD_AFTER)
_FUNCTION_HEAD = re.compile(
    _WORD_BEFORE
    + r"(?:function|predicate)(?:\s+method)?\s+(?:\{:[^}]*\}\s*)*([A-Za-z_][A-Za-z0-9_'?]*)\s*(<[^>(]*>)?\s*\("
)


_FUNCTION_CLAUSE = re.compile(r"\b(requires|reads|ensures|decreases)\b")


def _flat(text: str) -> str:
    """`text` on one line, its comments dropped (a `//` would swallow the rest of the line)."""
    return " ".join(mask(text, literals=False).split())


def rewrite_by_method(source: str) -> str:
    """`function F(x) ... { E } by method { S }` (Dafny 3.1+) -> the function, and the by-method body as
    a method `F__by_method(x) returns (r) requires ... ensures r == F(x) { S }`: the proof obligation
    the verifier gives a by-method body, written on the `by method` line."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    for by in _BY_METHOD.finditer(masked):
        if previous_token(masked, by.start()) != "}":
            continue
        close = masked.rfind("}", 0, by.start())
        heads = list(_FUNCTION_HEAD.finditer(masked, 0, close))
        if not heads:
            continue
        head = heads[-1]
        params_close = matching_brace(masked, head.end() - 1)
        # the body's `{`: the first block-opening brace after the header
        body = next(
            (k for k in range(params_close, close) if masked[k] == "{" and opens_block(masked, k)), None
        )
        if body is None or matching_brace(masked, body) != close:
            continue
        name, type_params = head.group(1), head.group(2) or ""
        params = source[head.end() : params_close]
        names = []
        for part in _split_top_level(params):
            declared = re.match(r"\s*(?:ghost\s+|nameonly\s+)*([A-Za-z_][A-Za-z0-9_'?]*)\s*:", part)
            if declared:
                names.append(declared.group(1))
        after = masked[params_close + 1 : body]
        result = re.match(r"\s*:\s*\(\s*([A-Za-z_][A-Za-z0-9_'?]*)\s*:", after)
        if result:
            result_name = result.group(1)
            result_type = source[
                params_close + 1 + result.end() : matching_brace(masked, params_close + 1 + after.index("("))
            ]
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


_CONSTRUCTOR_PATTERN = re.compile(r"\s*[A-Za-z_][A-Za-z0-9_'?.]*\s*\(")
_ARROW = re.compile(r"\s*=>")


def rewrite_tuple_subpatterns(source: str) -> str:
    """A tuple inside a constructor pattern (`case Some((k, v)) => E`; Dafny 2.3 crashes on it) is bound
    to a fresh variable and taken apart first: `case Some(tuple__1) => var (k, v) := tuple__1; E`."""
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    fresh = 0
    for case in _CASE.finditer(masked):
        constructor = _CONSTRUCTOR_PATTERN.match(masked, case.end())
        if not constructor:
            continue
        open_at = constructor.end() - 1
        try:
            close = matching_brace(masked, open_at)
        except ValueError:
            continue
        arrow = _ARROW.match(masked, close + 1)
        if not arrow:
            continue
        lets = []
        for k, c in _top_level(masked, open_at + 1, close):
            if c != "(" or masked[:k].rstrip()[-1:] not in "(,":
                continue  # not a tuple: a nested constructor's arguments
            inner_close = matching_brace(masked, k)
            if not any(t == "," for _, t in _top_level(masked, k + 1, inner_close)):
                continue  # `()` or a parenthesized pattern
            fresh += 1
            name = f"tuple__{fresh}"
            end = matching_brace(masked, k) + 1
            edits.append((k, end, name + _newlines(source[k:end])))
            lets.append(f"var {_flat(source[k:end])} := {name};")
        if lets:
            edits.append((arrow.end(), arrow.end(), " " + " ".join(lets)))
    return _apply(source, edits)


_DATATYPE = re.compile(_WORD_BEFORE + r"(?:co)?datatype\s+([A-Za-z_][A-Za-z0-9_'?]*)\s*(<[^>=]*>)?\s*=")
_DECLARATION = re.compile(
    _WORD_BEFORE + r"(datatype|codatatype|function|predicate|lemma|method|ghost|module|class|const|type|"
    r"import|trait|iterator|newtype|static|include)" + _WORD_AFTER
)
_MEMBER = re.compile(
    _WORD_BEFORE + r"(static\s+)?((?:ghost\s+)?(?:function|predicate|lemma|method)(?:\s+method)?)\s+"
    r"(?:\{:[^}]*\}\s*)*([A-Za-z_][A-Za-z0-9_'?]*)\s*(<[^>(]*>)?\s*\("
)
_IDENTIFIER = re.compile(_WORD_BEFORE + r"[A-Za-z_][A-Za-z0-9_'?]*")


def _constructors_end(masked: str, start: int) -> int:
    """End of a datatype's constructor list starting at `start`: its members block's `{`, or the next
    declaration (or closing brace) at depth 0."""
    for k, c in _top_level(masked, start, len(masked)):
        if c in "{}" or _DECLARATION.match(masked, k):
            return k
    return len(masked)


_UNMOVED_MEMBER = re.compile(_WORD_BEFORE + r"(const|var|type)" + _WORD_AFTER)


def _datatype_members(masked: str) -> list[dict]:
    """Datatypes with a members block `{ ... }` after their constructors (Dafny 3+)."""
    found = []
    for decl in _DATATYPE.finditer(masked):
        block = _constructors_end(masked, decl.end())
        if masked[block : block + 1] != "{":
            continue
        close = matching_brace(masked, block)
        if any(_UNMOVED_MEMBER.match(masked, k) for k, _ in _top_level(masked, block + 1, close)):
            continue  # members this rewrite does not move
        fields = set()
        for ctor_args in re.finditer(r"\(([^()]*)\)", masked[decl.end() : block]):
            fields.update(re.findall(r"([A-Za-z_][A-Za-z0-9_'?]*)\s*:", ctor_args.group(1)))
        found.append({"name": decl.group(1), "type_params": (decl.group(2) or "").strip(), "block": block,
                      "close": close, "fields": fields, "members": list(_MEMBER.finditer(masked, block + 1, close))})  # fmt: skip
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
            k = j
        else:
            break
    return k


def _argument_count(masked: str, open_at: int) -> int:
    close = matching_brace(masked, open_at)
    inner = masked[open_at + 1 : close]
    if not inner.strip():
        return 0
    return 1 + sum(c == "," for _, c in _top_level(inner, 0, len(inner)))


def rewrite_datatype_members(source: str) -> str:
    """Members of a datatype (`datatype D = ... { predicate P(x) { ... this ... } }`, Dafny 3+) as top-level
    declarations `D__P(this__: D, x)`; `e.P(a)` -> `D__P(e, a)`, `this` and bare fields/members inside
    the bodies through `this__`. Static members drop the receiver. Overloaded member names across
    datatypes are told apart by argument count, then by the receiver's declared type."""
    masked = mask(source)
    datatypes = _datatype_members(masked)
    if not datatypes:
        return source
    owners: dict[str, list[tuple[dict, re.Match[str]]]] = {}
    for d in datatypes:
        for m in d["members"]:
            owners.setdefault(m.group(3), []).append((d, m))

    member_arity = {id(m): _argument_count(masked, m.end() - 1) for d in datatypes for m in d["members"]}

    def owner_of(name: str, receiver: str, count: int, masked_now: str, at: int) -> dict | None:
        static = [d for d, m in owners[name] if m.group(1) and receiver == d["name"]]
        if static:
            return static[0]
        candidates = [(d, m) for d, m in owners[name] if not m.group(1) and member_arity[id(m)] == count]
        if len(candidates) == 1:
            return candidates[0][0]
        base = re.match(r"[A-Za-z_][A-Za-z0-9_'?]*", receiver)
        if base and candidates:
            # the receiver's declared type, nearest declaration first
            declared = list(re.finditer(_WORD_BEFORE + re.escape(base.group(0)) + r"\s*:\s*([A-Za-z_][A-Za-z0-9_]*)",
                                        masked_now[:at]))  # fmt: skip
            if declared:
                for d, _ in candidates:
                    if d["name"] == declared[-1].group(1):
                        return d
        return None

    # 1. call sites `receiver.member(`, one per pass (receivers may hold other calls)
    for _ in range(10000):
        masked = mask(source)
        call = None
        for m in re.finditer(r"\.\s*([A-Za-z_][A-Za-z0-9_'?]*)\s*\(", masked):
            if m.group(1) not in owners or masked[m.start() - 1 : m.start()] in ("", " ", "\n"):
                continue
            start = _receiver_start(masked, m.start())
            receiver = source[start : m.start()]
            if not receiver or not IDENT_CHAR.match(masked[start]) and masked[start] not in "(":
                continue
            owner = owner_of(m.group(1), receiver, _argument_count(masked, m.end() - 1), masked, start)
            if owner is None:
                continue
            static = any(mm.group(1) for d, mm in owners[m.group(1)] if d is owner)
            empty = not masked[m.end() : matching_brace(masked, m.end() - 1)].strip()
            target = f"{owner['name']}__{m.group(1)}("
            text = target if static else target + receiver + ("" if empty else ", ")
            call = (start, m.end(), text + _newlines(source[start : m.end()]))
            break
        if call is None:
            break
        source = _apply(source, [call])
    # 2. the declarations, `this` and bare names inside them
    masked = mask(source)
    edits: list[tuple[int, int, str]] = []
    for d in _datatype_members(masked):
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
            text = masked[m.end() : end]
            bound = set(re.findall(r"([A-Za-z_][A-Za-z0-9_'?]*)\s*:(?!=)", text))
            bound |= set(re.findall(_WORD_BEFORE + r"var\s+([A-Za-z_][A-Za-z0-9_'?]*)", text))
            for case in re.finditer(_WORD_BEFORE + r"case([^=]*)=>", text):
                bound |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_'?]*", case.group(1)))
            for q in re.finditer(_WORD_BEFORE + r"(?:forall|exists)\s+([^:|]*)", text):
                bound |= set(re.findall(r"[A-Za-z_][A-Za-z0-9_'?]*", q.group(1)))
            for ident in _IDENTIFIER.finditer(masked, m.end(), end):
                word, at = ident.group(0), ident.start()
                before = masked[:at].rstrip()[-1:]
                after = masked[ident.end() :].lstrip()
                if word == "this":
                    edits.append((at, ident.end(), "this__"))
                elif before == "." or after.startswith(":=") or word in bound:
                    continue
                elif word in names and after.startswith("("):
                    open_at = masked.index("(", ident.end())
                    empty = not masked[open_at + 1 : matching_brace(masked, open_at)].strip()
                    edits.append((at, open_at + 1, f"{d['name']}__{word}(this__" + ("" if empty else ", ")))
                elif word in d["fields"]:
                    edits.append((at, ident.end(), f"this__.{word}"))
    return _apply(source, edits)


def rewrite_named_constructor_arguments(source: str) -> str:
    """`C(y := 1, x := 2)` (Dafny 3+ named arguments) -> `C(2, 1)` for a datatype constructor `C(x, y)`."""
    masked = mask(source)
    constructors: dict[str, list[str]] = {}
    for decl in _DATATYPE.finditer(masked):
        k = _constructors_end(masked, decl.end())
        for ctor in re.finditer(r"([A-Za-z_][A-Za-z0-9_'?]*)\s*\(([^()]*)\)", masked[decl.end() : k]):
            names = [
                re.match(r"\s*(?:ghost\s+)?([A-Za-z_][A-Za-z0-9_'?]*)\s*:", part)
                for part in _split_top_level(ctor.group(2))
            ]
            if all(names):
                constructors[ctor.group(1)] = [n.group(1) for n in names if n]
    for _ in range(10000):  # the innermost (last) call first, one per pass: calls nest
        edit = None
        for call in reversed(list(re.finditer(_WORD_BEFORE + r"([A-Za-z_][A-Za-z0-9_'?]*)\s*\(", masked))):
            edit = _positional(source, masked, call, constructors.get(call.group(1)))
            if edit:
                break
        if edit is None:
            return source
        source = _apply(source, [edit])
        masked = mask(source)
    return source


def _positional(
    source: str, masked: str, call: re.Match[str], params: list[str] | None
) -> tuple[int, int, str] | None:
    """The edit putting the named arguments of a constructor call in positional order, if it has any."""
    if not params:
        return None
    open_at = call.end() - 1
    close = matching_brace(masked, open_at)
    cuts = [open_at] + [k for k, c in _top_level(masked, open_at + 1, close) if c == ","] + [close]
    given: dict[str, str] = {}
    positional: list[str] = []
    for a, b in zip(cuts, cuts[1:]):
        named = re.match(r"\s*([A-Za-z_][A-Za-z0-9_'?]*)\s*:=", masked[a + 1 : b])
        if named:
            given[named.group(1)] = source[a + 1 + named.end() : b].strip()
        else:
            positional.append(source[a + 1 : b].strip())
    if not given or set(given) - set(params) or len(positional) + len(given) != len(params):
        return None
    ordered = positional + [given[p] for p in params[len(positional) :] if p in given]
    if len(ordered) != len(params):
        return None
    return open_at + 1, close, ", ".join(_flat(a) for a in ordered) + _newlines(source[open_at:close])


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
        comma = next((k for k, c in _top_level(masked, match.end(), end) if c == ","), None)
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
    """A Dafny 4 program in the syntax Dafny 2.x/3.x accept (see the module docstring). A program with
    unbalanced brackets (a model's answer may be one) is returned as it is, for the verifier's own
    parse error."""
    try:
        return _to_legacy(source)
    except ValueError:  # matching_brace found no partner
        return source


def _to_legacy(source: str) -> str:
    source = rewrite_for_loops(
        rewrite_function_syntax(rewrite_datatype_members(rewrite_named_constructor_arguments(source)))
    )
    source = rewrite_small_forms(
        rewrite_by_method(rewrite_tuple_subpatterns(rewrite_literal_matches(source)))
    )
    return wrap_top_level_imports(source)
