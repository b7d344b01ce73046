"""From integer state traces to readable, verified Python (MIPS step 3: symbolic regression into code).

Every state variable's update s_i' = F_i(s, x) and every output y_j = G_j(s') is regressed from the
table of its observed values: exact integer linear regression (LR, with modular and floor-division
forms), Boolean formulas (BR) when every column is 0/1, then a brute-force expression search (SR).
For a finite-state machine the state labels are arbitrary, so labellings (and a bit encoding) are
searched until every rule has a formula. The emitted function is plain Python:

    def f(xs: list[list[int]]) -> list[list[int]]:
        s0 = 0
        ys = []
        for x0, in xs:
            s0 = (s0 + x0) % 2
            ys.append([s0])
        return ys

A candidate is chosen with `verify` on the validation split; the chosen program is then `check`ed,
once, on the untouched test split and on longer sequences, and only that makes a task solved.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from intelligible.mips.extract import StateTrace
from intelligible.symbolic import boolean_formula, fit_integer_linear, search_expression

_SAFE_BUILTINS = {"abs": abs, "int": int, "min": min, "max": max, "len": len, "range": range}


@dataclass
class Program:
    """A candidate program: initial state, update and output expressions, the source they make."""

    state_names: list[str]
    initial: list[int]
    updates: list[str]
    outputs: list[str]
    input_dim: int
    methods: list[str] = field(default_factory=list)  # how each expression was found: LR, BR or SR

    @property
    def source(self) -> str:
        inputs = ", ".join(f"x{i}" for i in range(self.input_dim)) + ("," if self.input_dim == 1 else "")
        lines = ["def f(xs: list[list[int]]) -> list[list[int]]:"]
        lines += [f"    {name} = {value}" for name, value in zip(self.state_names, self.initial)]
        lines += ["    ys = []", f"    for {inputs} in xs:"]
        if self.state_names:
            targets = ", ".join(self.state_names)
            lines.append(f"        {targets} = {', '.join(self.updates)}")
        lines += [f"        ys.append([{', '.join(self.outputs)}])", "    return ys"]
        return "\n".join(lines) + "\n"

    @property
    def length(self) -> int:
        """Lines of the emitted function."""
        return self.source.count("\n")

    @property
    def method(self) -> str:
        """The regression kinds used, e.g. 'LR' or 'BR+SR'."""
        return "+".join(kind for kind in ("LR", "BR", "SR") if kind in self.methods)

    def pruned(self) -> Program:
        """The same program without state variables that no output depends on (dead code)."""
        import re

        def uses(expression: str) -> set[str]:
            return {name for name in self.state_names if re.search(rf"\b{name}\b", expression)}

        live = set().union(*(uses(e) for e in self.outputs)) if self.outputs else set()
        while True:
            grown = live.union(*(uses(self.updates[self.state_names.index(n)]) for n in live))
            if grown == live:
                break
            live = grown
        keep = [i for i, name in enumerate(self.state_names) if name in live]
        return Program([self.state_names[i] for i in keep], [self.initial[i] for i in keep],
                       [self.updates[i] for i in keep], self.outputs, self.input_dim, self.methods)  # fmt: skip

    def compile(self):  # noqa: ANN201
        namespace: dict = {"__builtins__": _SAFE_BUILTINS}
        exec(compile(self.source, "<mips program>", "exec"), namespace)  # noqa: S102 - our own emitted code
        return namespace["f"]


def _wrong_sequences(program: Program, inputs: np.ndarray, outputs: np.ndarray, *, stop_at_first: bool):
    """Indices of the sequences the program gets wrong (a crash counts as wrong), in order."""
    function = program.compile()
    chunk = 1024  # Python lists of one chunk at a time: a large split never exists as nested lists
    for start in range(0, len(inputs), chunk):
        rows = zip(inputs[start : start + chunk].tolist(), outputs[start : start + chunk].tolist())
        for offset, (xs, ys) in enumerate(rows):
            try:
                right = function(xs) == ys
            except Exception:  # noqa: BLE001 - a crashing candidate (e.g. % 0) is simply wrong
                right = False
            if not right:
                yield start + offset
                if stop_at_first:
                    return


def verify(program: Program, inputs: np.ndarray, outputs: np.ndarray) -> tuple[bool, int | None]:
    """Run the program on every sequence; (all right, index of the first wrong sequence or None)."""
    first = next(_wrong_sequences(program, inputs, outputs, stop_at_first=True), None)
    return first is None, first


def check(program: Program, inputs: np.ndarray, outputs: np.ndarray) -> dict:
    """Run the program on every sequence and count: {sequences, length, wrong, first_wrong}."""
    wrong = list(_wrong_sequences(program, inputs, outputs, stop_at_first=False))
    return {"sequences": int(len(inputs)), "length": int(inputs.shape[1]), "wrong": len(wrong),
            "first_wrong": wrong[0] if wrong else None}  # fmt: skip


# --------------------------------------------------------------------------- regression
def regress(
    columns: dict[str, np.ndarray], target: np.ndarray, *, search_size: int = 5
) -> tuple[str, str] | None:
    """(kind, expression) reproducing `target` from `columns` exactly, or None."""
    names = list(columns)
    table = (
        np.stack([columns[name] for name in names], axis=1) if names else np.zeros((len(target), 0), np.int64)
    )
    rows, index = np.unique(np.concatenate([table, target[:, None]], axis=1), axis=0, return_index=True)
    table, target = rows[:, :-1], rows[:, -1]
    if len(np.unique(target)) == 1:
        return "LR", str(int(target[0]))
    if not names:
        return None
    for i, name in enumerate(names):
        if np.array_equal(table[:, i], target):
            return "LR", name  # a bare variable: no formula is shorter (a delay line is all of these)
    found: list[tuple[str, str]] = []
    fit = fit_integer_linear(table, target, names)
    if fit is not None:
        found.append(("LR", fit.expression))
    else:
        wide = wide_modular_fit(table, target, names)
        if wide is not None:
            found.append(("LR", wide))
    if np.isin(table, (0, 1)).all() and np.isin(target, (0, 1)).all():
        formula = boolean_formula(table, target, names)
        if formula is not None:
            found.append(("BR", formula))
    plain_linear = fit is not None and fit.modulus is None and fit.floor_div is None
    # an exact expression names every variable the target depends on, and e variables need at
    # least e leaves and e - 1 operators: past that size the search cannot succeed, so skip it
    if search_size and not plain_linear and 2 * _essential_count(table, target) - 1 <= search_size:
        # Occam between the regressors: `(s + 9) // 10` fits a counter's seen range as well as
        # `int(s > 0)`, but only the shorter one generalises past it
        expression = search_expression(
            {n: table[:, i] for i, n in enumerate(names)}, target, max_size=search_size
        )
        if expression is not None:
            found.append(("SR", expression))
    return min(found, key=lambda kind_text: len(kind_text[1])) if found else None


def _essential_count(table: np.ndarray, target: np.ndarray) -> int:
    """How many columns the target provably depends on: dropping one leaves two rows that agree on
    every other column but have different targets."""
    count = 0
    for i in range(table.shape[1]):
        rest = np.delete(table, i, axis=1)
        _, inverse = np.unique(rest, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
        low = np.full(inverse.max() + 1, np.iinfo(np.int64).max)
        high = np.full(inverse.max() + 1, np.iinfo(np.int64).min)
        np.minimum.at(low, inverse, target)
        np.maximum.at(high, inverse, target)
        count += bool((low != high).any())
    return count


# `intelligible.symbolic.fit_integer_linear` tries moduli and divisors up to this; larger ones are
# tried by `wide_modular_fit`, up to bounds read off each table
SYMBOLIC_LARGEST_MODULUS = 16
# element operations one wide fit may spend (like the symbolic search's budget, ~0.1 s of numpy)
_WIDE_BUDGET = 20_000_000
_WIDE_COEFFICIENTS = (1, -1, 2, -2)


def wide_modular_fit(table: np.ndarray, target: np.ndarray, names: list[str]) -> str | None:
    """`(a . x + b) % m` or `(a . x + b) // m` exact on every row, for m past the symbolic range.

    The moduli come from the table, not from a fixed list: `% m` needs every target in [0, m), so
    m runs from max(target) + 1 up to the largest value in the table plus one; `// m` runs up to
    the largest |a . x| the coefficients can make. Coefficients are small (+-1, +-2) on up to three
    columns, smallest moduli first, within a fixed amount of work.
    """
    table = np.asarray(table, dtype=np.int64)
    target = np.asarray(target, dtype=np.int64)
    if table.shape[1] == 0 or len(target) == 0:
        return None
    subsets = [list(c) for size in (1, 2, 3) for c in itertools.combinations(range(table.shape[1]), size)]
    grids = {size: np.array(list(itertools.product(_WIDE_COEFFICIENTS, repeat=size)), dtype=np.int64)
             for size in (1, 2, 3)}  # fmt: skip
    largest = int(np.abs(table).max())
    low_modulus = SYMBOLIC_LARGEST_MODULUS + 1
    work = 0
    if target.min() >= 0:
        for modulus in range(max(low_modulus, int(target.max()) + 1), max(low_modulus, largest + 1) + 1):
            for columns in subsets:
                grid = grids[len(columns)]
                work += grid.size * len(table)
                if work > _WIDE_BUDGET:
                    return None
                gap = (target - grid @ table[:, columns].T) % modulus  # the intercept each row asks for
                hits = np.flatnonzero((gap == gap[:, :1]).all(axis=1))
                if len(hits):
                    return _wide_text(names, columns, grid[hits[0]], int(gap[hits[0], 0]), "%", modulus)
    span = 2 * largest * min(3, table.shape[1])
    for divisor in range(low_modulus, span + 2):
        for columns in subsets:
            grid = grids[len(columns)]
            work += grid.size * len(table)
            if work > _WIDE_BUDGET:
                return None
            # (v + b) // m == y  <=>  m*y - v <= b <= m*y - v + m - 1 on every row
            need = divisor * target - grid @ table[:, columns].T
            low, high = need.max(axis=1), need.min(axis=1) + divisor - 1
            hits = np.flatnonzero(low <= high)
            if len(hits):
                best = hits[0]
                intercept = int(np.clip(0, low[best], high[best]))
                return _wide_text(names, columns, grid[best], intercept, "//", divisor)
    return None


def _wide_text(names: list[str], columns: list[int], coefficients: np.ndarray, intercept: int, operator: str,
               divisor: int) -> str:  # fmt: skip
    from intelligible.symbolic.integer_regression import linear_text

    if operator == "%" and intercept > divisor // 2:
        intercept -= divisor  # the symmetric residue reads better: - 1, not + 19
    inner = linear_text({names[c]: int(a) for c, a in zip(columns, coefficients)}, intercept)
    if not inner.lstrip("-").isidentifier():
        inner = f"({inner})"
    return f"{inner} {operator} {divisor}"


def _rules(states: np.ndarray, inputs: np.ndarray, outputs: np.ndarray, names: list[str],
           search_size: int, optional: frozenset[str] = frozenset()
           ) -> tuple[list[str], list[str], list[str]] | None:  # fmt: skip
    """Update and output expressions for integer states (n, T + 1, r), or None.

    Outputs are regressed on the states outside `optional` first (a shift register's start flags),
    and on all of them only when that fails: fewer columns give shorter formulas, and a parity of
    ten window bits stays a parity instead of a 20-input truth table."""
    r, d_in = states.shape[-1], inputs.shape[-1]
    before = states[:, :-1].reshape(-1, r)
    after = states[:, 1:].reshape(-1, r)
    x = inputs.reshape(-1, d_in)
    y = outputs.reshape(-1, outputs.shape[-1])
    columns = {name: before[:, i] for i, name in enumerate(names)}
    columns.update({f"x{i}": x[:, i] for i in range(d_in)})
    updates, outs, kinds = [], [], []
    for i in range(r):
        found = regress(columns, after[:, i], search_size=search_size)
        if found is None:
            return None
        kinds.append(found[0])
        updates.append(found[1])
    # outputs read the new state only (y_t = g(h_t)); inputs allowed too, as the RNN's g sees h_t
    # which already contains x_t
    new_columns = {name: after[:, i] for i, name in enumerate(names)}
    essential = {name: values for name, values in new_columns.items() if name not in optional}
    for j in range(y.shape[1]):
        found = regress(essential, y[:, j], search_size=search_size) if optional and essential else None
        if found is None:
            found = regress(new_columns, y[:, j], search_size=search_size)
        if found is None:
            found = regress({**new_columns, **{f"x{i}": x[:, i] for i in range(d_in)}}, y[:, j],
                            search_size=search_size)  # fmt: skip
        if found is None:
            return None
        kinds.append(found[0])
        outs.append(found[1])
    return updates, outs, kinds


def fsm_programs(trace: StateTrace, *, max_permutations: int = 720, search_size: int = 4) -> list[Program]:
    """Programs for a finite-state machine: labellings of its states as one integer, and as bits."""
    labels = trace.states[..., 0]
    n_states = int(labels.max()) + 1
    found: list[Program] = []
    # labellings: identity first (states numbered by first appearance), then all permutations
    order = list(dict.fromkeys(labels.T.ravel().tolist()))
    first = np.empty(n_states, dtype=np.int64)
    first[order] = np.arange(n_states)
    hints = [tuple(first)]
    if "pc_order" in trace.detail:  # states numbered along the hidden states' main axis, both ways
        for direction in (trace.detail["pc_order"], trace.detail["pc_order"][::-1]):
            along = np.empty(n_states, dtype=np.int64)
            along[direction] = np.arange(n_states)
            hints.append(tuple(along))
    # the state written as (output, rank) first: when that reads, blind permutations of the labels
    # (720 regressions, tens of seconds on a 20-state machine) are not needed
    factored = _output_factored_programs(trace, labels, n_states, hints, search_size)
    permutations = itertools.islice(
        itertools.permutations(range(n_states)), 0 if factored else max_permutations
    )
    for count, perm in enumerate(itertools.chain(hints, permutations)):
        relabel = np.asarray(perm)[labels]
        rules = _rules(relabel[..., None], trace.inputs, trace.outputs, ["s"],
                       search_size=search_size if count < len(hints) else 0)  # fmt: skip
        if rules:
            found.append(
                Program(["s"], [int(relabel[0, 0])], rules[0], rules[1], trace.inputs.shape[-1], rules[2])
            )
            break
    found += factored
    bits = max(1, math.ceil(math.log2(n_states))) if n_states > 1 else 1
    if bits <= 3 and np.isin(trace.inputs, (0, 1)).all():
        for perm in itertools.islice(itertools.permutations(range(2**bits), n_states), max_permutations):
            code = np.asarray(perm)[labels]
            encoded = (code[..., None] >> np.arange(bits)) & 1
            names = [f"b{i}" for i in range(bits)]
            rules = _rules(encoded, trace.inputs, trace.outputs, names, search_size=0)
            if rules:
                start = [int(v) for v in encoded[0, 0]]
                found.append(Program(names, start, rules[0], rules[1], trace.inputs.shape[-1], rules[2]))
                break
    return found


def _output_factored_programs(trace: StateTrace, labels: np.ndarray, n_states: int, hints: list[tuple],
                              search_size: int) -> list[Program]:  # fmt: skip
    """A Moore machine's state written as (its output, its rank among the states with that output).

    When the output alone identifies the state, the state variable simply is the output (an adding
    machine mod k: s = y). Otherwise the rank is the rest of the state (base-k addition: digit and
    carry), ranked in the orders of the labelling hints.
    """
    if trace.outputs.shape[-1] != 1:
        return []
    own = np.full(n_states, np.iinfo(np.int64).min, dtype=np.int64)
    own[labels[:, 1:].ravel()] = trace.outputs[..., 0].ravel()
    if (own == np.iinfo(np.int64).min).any():  # a silent initial state: give it the smallest output
        own[own == np.iinfo(np.int64).min] = own[own != np.iinfo(np.int64).min].min()
    d_in = trace.inputs.shape[-1]
    if len(np.unique(own)) == n_states:
        rules = _rules(own[labels][..., None], trace.inputs, trace.outputs, ["s"], search_size=search_size)
        if rules:
            return [Program(["s"], [int(own[labels[0, 0]])], rules[0], rules[1], d_in, rules[2])]
        return []
    for hint in hints:
        position = np.asarray(hint)
        rank = np.zeros(n_states, dtype=np.int64)
        for value in np.unique(own):
            members = np.flatnonzero(own == value)
            rank[members[np.argsort(position[members])]] = np.arange(len(members))
        encoded = np.stack([own[labels], rank[labels]], axis=-1)
        rules = _rules(encoded, trace.inputs, trace.outputs, ["s0", "s1"], search_size=search_size)
        if rules:
            return [
                Program(["s0", "s1"], [int(v) for v in encoded[0, 0]], rules[0], rules[1], d_in, rules[2])
            ]
    return []


def lattice_programs(trace: StateTrace, *, search_size: int = 6) -> list[Program]:
    """Programs whose state variables are the lattice coordinates (and their negations)."""
    r = trace.states.shape[-1]
    names = [f"s{i}" for i in range(r)]
    found = []
    for signs in itertools.islice(itertools.product((1, -1), repeat=r), 8):
        states = trace.states * np.asarray(signs)
        optional = frozenset(names[i] for i in trace.detail.get("flags", ()))
        rules = _rules(states, trace.inputs, trace.outputs, names, search_size=search_size, optional=optional)
        if rules:
            start = [int(v) for v in states[0, 0]]
            found.append(Program(names, start, rules[0], rules[1], trace.inputs.shape[-1], rules[2]))
            break
    return found


def programs_from_trace(trace: StateTrace) -> list[Program]:
    """Candidate programs for a state trace, simplest first."""
    candidates = fsm_programs(trace) if trace.method == "fsm" else lattice_programs(trace)
    return sorted((p.pruned() for p in candidates), key=lambda p: len(p.source))
