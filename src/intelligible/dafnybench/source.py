"""Reading Dafny source without a Dafny parser: comments and literals masked out, statements and
clauses found by bracket depth.

Every edit this package makes (hint removal, Dafny 4 -> legacy rewrites, the strict spec check)
works on `mask(source)`, which has the same length as the source with comments and string/char
literals blanked, so a keyword inside a comment or a string is never mistaken for code.
"""

from __future__ import annotations

import re

IDENT_CHAR = re.compile(r"[A-Za-z0-9_'?]")  # a character of a Dafny identifier
CLAUSE_KEYWORDS = ("requires", "ensures", "reads", "modifies", "invariant", "decreases", "free", "yield")
# a `{` after one of these (or after an operator character) opens a set display, not a block
_EXPRESSION_WORDS = {"in", "then", "else", "returns", "return", "assert", "assume", "expect", "requires",
                     "ensures", "reads", "modifies", "invariant", "decreases", "var", "case", "print",
                     "multiset", "set", "iset", "map", "imap", "seq"}  # fmt: skip


_SPECIAL = re.compile(r"//|/\*|@\"|\"|'")
_COMMENT_DELIMITER = re.compile(r"/\*|\*/")
_STRING = re.compile(r'"(?:\\[\s\S]?|[^"\\])*(")?')  # unterminated: to the end
_VERBATIM = re.compile(r'@"(?:""|[^"])*(")?')
_CHAR = re.compile(r"'(\\u[0-9a-fA-F]{4}|\\.|[^\\'\n])'")
_NOT_NEWLINE = re.compile(r"[^\n]")


def mask(source: str, *, literals: bool = True) -> str:
    """The source with comments (nested /* */ included) and, when `literals`, string/char literals
    replaced by spaces, newlines kept, so positions in the mask are positions in the source.

    One regex search per comment or literal, not a Python step per character: the compatibility
    layer masks a program a few times, and its cost must stay linear in the program's length."""
    pieces: list[str] = []
    n, i, emitted = len(source), 0, 0

    def blank(start: int, end: int) -> None:
        nonlocal emitted
        pieces.append(source[emitted:start])
        pieces.append(_NOT_NEWLINE.sub(" ", source[start:end]))
        emitted = end

    while True:
        special = _SPECIAL.search(source, i)
        if special is None:
            break
        k, token = special.start(), special.group(0)
        if token == "//":
            end = source.find("\n", k)
            i = n if end == -1 else end
            blank(k, i)
        elif token == "/*":
            depth, i = 1, n
            for delimiter in _COMMENT_DELIMITER.finditer(source, k + 2):
                depth += 1 if delimiter.group(0) == "/*" else -1
                if depth == 0:
                    i = delimiter.end()
                    break
            blank(k, i)
        elif token in ('"', '@"'):
            literal = (_STRING if token == '"' else _VERBATIM).match(source, k)
            i = literal.end() if literal else n  # both patterns match at least the opening quote
            if literals:
                blank(k + 1, i - 1 if literal and literal.group(1) else i)
        else:  # a char literal ('a', '\n', '\u0041'); a prime after an identifier is part of its name
            if k > 0 and IDENT_CHAR.match(source[k - 1]):
                i = k + 1
                continue
            literal = _CHAR.match(source, k)
            if literal is None:
                i = k + 1
                continue
            i = literal.end()
            if literals:
                blank(k + 1, i - 1)
    pieces.append(source[emitted:])
    return "".join(pieces)


_CLOSE = {")": "(", "]": "[", "}": "{"}


def closing_bracket(masked: str, open_at: int) -> int | None:
    """Index of the bracket closing the one at `open_at` (in masked text), or None if it never closes
    (a cut-off answer, a data defect): callers decide what an unclosed bracket means."""
    depth = 0
    for match in _BRACKET.finditer(masked, open_at):
        if match.group(0) in "([{":
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return match.start()
    return None


def matching_brace(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in masked text); ValueError if none."""
    close = closing_bracket(masked, open_at)
    if close is None:
        raise ValueError(f"unbalanced bracket at offset {open_at}")
    return close


_BRACKET = re.compile(r"[()\[\]{}]")
_ATTRIBUTE_OPEN = re.compile(r"\{\s*:")


def is_attribute(masked: str, brace_at: int) -> bool:
    """Whether the `{` at `brace_at` opens an attribute such as `{:trigger f(x)}` (never a block)."""
    return _ATTRIBUTE_OPEN.match(masked, brace_at) is not None


def previous_token(masked: str, at: int) -> str:
    """The token just before `at` (skipping whitespace): a word, or one punctuation character."""
    k = at - 1
    while k >= 0 and masked[k].isspace():
        k -= 1
    if k < 0:
        return ""
    if IDENT_CHAR.match(masked[k]):
        end = k + 1
        while k >= 0 and IDENT_CHAR.match(masked[k]):
            k -= 1
        return masked[k + 1 : end]
    return masked[k]


def opens_block(masked: str, brace_at: int, clause_start: int | None = None) -> bool:
    """Whether the `{` at `brace_at` opens a statement block rather than a set display/comprehension.

    `clause_start` (where the enclosing clause began) lets a `|` be read: after an even number of
    bars it closed a cardinality `|s|`, so a `{` after it starts the body."""
    if is_attribute(masked, brace_at):
        return False  # `forall k {:trigger a[k]} :: ...`: an attribute inside the expression
    before = previous_token(masked, brace_at)
    if before == "" or before in (")", "]", "}", ";"):
        return True
    if before in _EXPRESSION_WORDS:
        return False
    if IDENT_CHAR.match(before[0]):
        return True  # `invariant x <= n {`: a complete expression, then the body
    if before == "|":
        if clause_start is not None:
            return masked.count("|", clause_start, brace_at) % 2 == 0
        line_start = masked.rfind("\n", 0, brace_at) + 1
        return not masked[line_start:brace_at].strip()
    return False  # after an operator character: a display


def clause_end(masked: str, start: int) -> int:
    """End (exclusive) of a specification clause starting at `start` (e.g. `invariant ...`): before the
    next clause keyword or the body's `{` at bracket depth 0, or after a `;`; trailing blanks (and
    comments, which are blank in the mask) are not part of it."""
    end = _clause_end(masked, start)
    while end > start and masked[end - 1].isspace():
        end -= 1
    return end


def _clause_end(masked: str, start: int) -> int:
    depth, k, n = 0, start, len(masked)
    keyword = re.compile(r"\b(" + "|".join(CLAUSE_KEYWORDS) + r")\b")
    # skip the clause's own keyword
    first = keyword.match(masked, k)
    if first:
        k = first.end()
    while k < n:
        c = masked[k]
        if c in "([":
            depth += 1
        elif c in ")]":
            if depth == 0:
                return k
            depth -= 1
        elif c == "{":
            if depth == 0 and opens_block(masked, k, start):
                return k
            depth += 1
        elif c == "}":
            if depth == 0:
                return k
            depth -= 1
        elif c == ";" and depth == 0:
            return k + 1
        elif depth == 0 and IDENT_CHAR.match(c) and (k == 0 or not IDENT_CHAR.match(masked[k - 1])):
            match = keyword.match(masked, k)
            if match:
                return k
        k += 1
    return n


def statement_end(masked: str, start: int) -> int:
    """End (exclusive) of a statement like `assert E;` or `assert E by { ... }` starting at `start`."""
    depth, k, n = 0, start, len(masked)
    while k < n:
        c = masked[k]
        if c in "([{":
            if c == "{" and depth == 0 and previous_token(masked, k) == "by":
                close = closing_bracket(masked, k)
                return n if close is None else close + 1  # an unclosed proof block runs to the end
            depth += 1
        elif c in ")]}":
            if depth == 0:
                return k
            depth -= 1
        elif c == ";" and depth == 0:
            return k + 1
        k += 1
    return n


def line_of(source: str, offset: int) -> int:
    """1-based line number of an offset."""
    return source.count("\n", 0, offset) + 1


_TOKEN = re.compile(
    r'@"(?:""|[^"])*"|"(?:\\.|[^"\\])*"|' + r"'(?:\\u[0-9a-fA-F]{4}|\\.|[^\\'\n])'|"
    r"[A-Za-z_][A-Za-z0-9_'?]*|\d+(?:\.\d+)?|<==>|==>|<==|:=|==|!=|<=|>=|&&|\|\||::|\.\.|:\||\S"
)


def tokens(source: str) -> list[tuple[str, int]]:
    """(token, offset) for the code of `source`: comments dropped, literals kept whole."""
    code = mask(source, literals=False)
    return [(m.group(0), m.start()) for m in _TOKEN.finditer(code)]


def has_code(source: str) -> bool:
    """Whether `source` holds anything but blanks and comments."""
    return bool(mask(source, literals=False).strip())
