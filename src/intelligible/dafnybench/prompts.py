"""The paper's prompts and the extraction of a program from a model's reply.

The default system and user prompts are the ones the published runs used (DafnyBench `eval/`), so
results are comparable; the feedback turn repeats their wording. Extraction follows the same order:
an `<answer>` block, a ```dafny fence, any ``` fence, else the whole reply.
"""

from __future__ import annotations

import re

from intelligible.core.errors import DataError

SYSTEM_PROMPT = (
    "You are an expert in Dafny. You will be given tasks dealing with Dafny programs including precise "
    "annotations.\n"
)
USER_PROMPT = (
    "Given a Dafny program with function signature, preconditions, postconditions, and code, but with "
    "annotations missing. Please return a complete Dafny program with the strongest possible annotations "
    "(loop invariants, assert statements, etc.) filled back in. Do not explain. Please use exactly the same "
    "function signature, preconditions, and postconditions. Do not ever modify the given lines. Below is the "
    "program:\n"
)
VERIFY_FEEDBACK = (
    "This answer got Dafny verification error:\n{output}\nPlease try again by taking the Dafny feedback.\n"
)
SPEC_FEEDBACK = "Please keep the preconditions and postconditions the same as the original program, or you fail the test.\n"
CHEAT_FEEDBACK = "Please don't use {:verify false} or assume false."


def first_messages(hints_removed: str, *, system: str = SYSTEM_PROMPT, user: str = USER_PROMPT) -> list[dict]:
    """The opening conversation for one task."""
    return [{"role": "system", "content": system}, {"role": "user", "content": user + hints_removed}]


def feedback_message(verifier_output: str | None, *, spec_reasons: list[str] | None = None) -> dict:
    """The user turn after a failed attempt: the verifier's errors and/or the spec check's reasons."""
    parts = []
    if verifier_output is not None:
        parts.append(VERIFY_FEEDBACK.format(output=verifier_output))
    if spec_reasons:
        parts.append(SPEC_FEEDBACK)
        parts.append("The check found: " + "; ".join(spec_reasons) + "\n")
        if any("assume" in r or "verify false" in r or "axiom" in r for r in spec_reasons):
            parts.append(CHEAT_FEEDBACK)
    return {"role": "user", "content": "".join(parts) or "Please try again."}


_FENCE = re.compile(r"```[ \t]*([A-Za-z]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)


def extract_program(reply: str) -> str:
    """The program in a reply; DataError when the reply is empty or holds no code."""
    if not reply or not reply.strip():
        raise DataError("empty reply")
    match = re.search(r"<answer>(.*?)(?:</answer>|\Z)", reply, re.S)
    if match:
        program = match.group(1)
    else:
        fences = list(_FENCE.finditer(reply))
        dafny = [f for f in fences if f.group(1).lower() == "dafny"]
        chosen = (dafny or fences)[:1]
        program = chosen[0].group(2) if chosen else reply
    program = program.strip("\n")
    if not re.search(r"\b(method|function|predicate|lemma|class|datatype|module)\b", program):
        raise DataError("the reply holds no Dafny code")
    return program + "\n"
