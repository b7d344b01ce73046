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


def mask(source: str, *, literals: bool = True) -> str:
    """The source with comments (nested /* */ included) and, when `literals`, string/char literals
    replaced by spaces, newlines kept, so positions in the mask are positions in the source."""
    out = list(source)
    i, n = 0, len(source)

    def blank(start: int, end: int) -> None:
        for k in range(start, min(end, n)):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        c = source[i]
        if source.startswith("//", i):
            end = source.find("\n", i)
            end = n if end == -1 else end
            blank(i, end)
            i = end
        elif source.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if source.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif source.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif c == '"' or (c == "@" and source.startswith('@"', i)):
            verbatim = c == "@"
            j = i + (2 if verbatim else 1)
            while j < n:
                if (verbatim and source.startswith('""', j)) or (not verbatim and source[j] == "\\"):
                    j += 2  # an escaped quote (verbatim strings double it) or any escape
                elif source[j] == '"':
                    j += 1
                    break
                else:
                    j += 1
            if literals:
                blank(i + 1, j - 1)
            i = j
        elif c == "'" and (i == 0 or not IDENT_CHAR.match(source[i - 1])):
            # a char literal ('a', '\n', '\u0041'); a prime after an identifier is part of its name
            match = re.match(r"'(\\u[0-9a-fA-F]{4}|\\.|[^\\'\n])'", source[i:])
            if match:
                if literals:
                    blank(i + 1, i + match.end() - 1)
                i += match.end()
            else:
                i += 1
        else:
            i += 1
    return "".join(out)


_CLOSE = {")": "(", "]": "[", "}": "{"}


def matching_brace(masked: str, open_at: int) -> int:
    """Index of the bracket closing the one at `open_at` (in masked text); ValueError if none."""
    depth = 0
    for k in range(open_at, len(masked)):
        c = masked[k]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return k
    raise ValueError(f"unbalanced bracket at offset {open_at}")


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
                return matching_brace(masked, k) + 1
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
