"""Hint removal: turn a verified Dafny program into a DafnyBench task.

The paper's hints are `assert`, `invariant` and `decreases`. DafnyBench removed every *line* that
starts with one of them, which left dangling continuation lines in about 40 files; here the whole
hint goes — a multi-line invariant, an `assert ... by { ... }` with its proof block — and lines that
become empty are dropped, so the result still parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from intelligible.dafnybench.source import clause_end, closing_bracket, line_of, mask, statement_end

HINT_KINDS = ("assert", "invariant", "decreases")
_WORD = re.compile(r"(?<![A-Za-z0-9_'?])(assert|invariant|decreases|calc)(?![A-Za-z0-9_'?])")


@dataclass(frozen=True)
class Hint:
    """One hint in a program: its kind, character span and first line."""

    kind: str
    start: int
    end: int
    line: int
    text: str


def find_hints(source: str, kinds: tuple[str, ...] = HINT_KINDS) -> list[Hint]:
    """Every hint statement or clause of the given kinds (`calc` blocks may be asked for too)."""
    masked = mask(source)
    found: list[Hint] = []
    position = 0
    while True:
        match = _WORD.search(masked, position)
        if match is None:
            break
        kind, start = match.group(1), match.start()
        if kind not in kinds:
            position = match.end()
            continue
        if kind == "assert":
            end = statement_end(masked, start)
        elif kind == "calc":
            brace = masked.find("{", match.end())
            if brace == -1:
                position = match.end()
                continue
            close = closing_bracket(masked, brace)
            end = len(masked) if close is None else close + 1  # an unclosed calc block runs to the end
        else:
            end = clause_end(masked, start)
        found.append(Hint(kind, start, end, line_of(source, start), source[start:end]))
        position = end
    return found


def remove_spans(source: str, spans: list[tuple[int, int]]) -> str:
    """Delete character spans; a line that held code only inside the spans disappears entirely."""
    if not spans:
        return source
    keep = bytearray(b"\x01") * len(source)
    for start, end in spans:
        keep[start:end] = b"\x00" * (end - start)
    masked = mask(source)
    lines_out: list[str] = []
    offset = 0
    for line in source.splitlines(keepends=True):
        flags = keep[offset : offset + len(line)]
        kept = "".join(ch for ch, k in zip(line, flags) if k)
        code_left = "".join(ch for ch, k in zip(masked[offset : offset + len(line)], flags) if k)
        touched = not all(flags)
        offset += len(line)
        if touched and not code_left.strip():
            continue  # the hint was the whole line (perhaps with a trailing comment)
        if touched:
            kept = kept.rstrip() + ("\n" if line.endswith("\n") else "")
        lines_out.append(kept)
    return "".join(lines_out)


def strip_hints(source: str, kinds: tuple[str, ...] = HINT_KINDS) -> str:
    """The program without its hints (see the module docstring)."""
    return remove_spans(source, [(h.start, h.end) for h in find_hints(source, kinds)])


def count_hint_chars(source: str, kinds: tuple[str, ...] = HINT_KINDS) -> int:
    """Characters of hint text (the metadata's `#_hint_char`, measured on whole hints)."""
    return sum(len(h.text) for h in find_hints(source, kinds))
