"""Limits derived from the task, and tasks one step past the benchmark (longer windows, larger
moduli, longer parities) read into programs that hold on untouched and on longer sequences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intelligible.mips.extract import StateTrace, hidden_trace, memory_length, read_shift_register
from intelligible.mips.limits import architectures, derive_limits, widths
from intelligible.mips.program import check, fsm_programs, programs_from_trace, wide_modular_fit
from intelligible.mips.rnn import RNN
from intelligible.mips.tasks import get_task, split, splits


def _limits(name: str, n: int = 2048):
    x, y, _, _ = split(name, n, 1, 0)
    return derive_limits(x, y)


def _set(linear: torch.nn.Linear, weight, bias) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.asarray(weight, dtype=np.float32)))
        linear.bias.copy_(torch.tensor(np.asarray(bias, dtype=np.float32)))


def _shift_register(k: int) -> tuple[np.ndarray, np.ndarray]:
    """A k-unit linear delay line: h' = (x, h_0, ..., h_{k-2})."""
    return np.hstack([np.eye(k, k=-1), np.eye(k)[:, :1]]), np.zeros(k)


def _verified_beyond(program, name: str) -> None:
    """The program is right on a fresh test split and on sequences 3x longer than the task's."""
    task = get_task(name)
    data = splits(task, 1, 1, 500, seed=7, n_long=200, long_length=3 * task.length)
    for x, y in (data.test, data.long):
        assert check(program, x, y)["wrong"] == 0, program.source


def test_window_tasks_past_the_benchmark_get_a_search_that_reaches_them():
    # the benchmark's fixed list stopped at 8 linear units and 4 for a nonlinear readout
    sums = _limits("Sum_Last10")
    assert (sums.lookback, sums.exact_linear, sums.linear_readout) == (10, True, True)
    assert max(a[0] for a in architectures(sums) if a[1:3] == (1, 1)) >= 10
    parity = _limits("Parity_Last10")
    assert parity.lookback == 10 and not parity.linear_readout
    order = architectures(parity)
    assert max(a[0] for a in order if a[1:3] == (1, 2)) >= 10
    assert not [a for a in order if a[1:3] == (1, 1)]  # a parity is no affine function: not tried
    assert max(a[0] for a in architectures(_limits("Newton_Magnetic")) if a[1:3] == (2, 2)) == 21  # T*d + 1


def test_limits_of_benchmark_tasks():
    assert _limits("Prev4").lookback == 5 and _limits("Sum_Last3").lookback == 3
    # a linear readout survives rounding: OR of two bits is round(2/3 (a + b))
    assert _limits("Bitwise_Or").linear_readout
    # the quick preset's parity no longer trains eight linear RNNs that could only fail
    quick = architectures(_limits("Parity_Last2"))
    assert quick[0] == (1, 1, 2) and len(quick) < 14
    assert _limits("Add_Mod_20").lookback == 10  # unbounded memory: the whole sequence


def test_widths_are_dense_then_spread_and_end_at_the_top():
    assert widths(3) == [1, 2, 3]
    assert widths(12, dense=8) == [1, 2, 3, 4, 5, 6, 7, 8, 11, 12]
    assert widths(21, start=2) == [2, 3, 4, 6, 8, 11, 15, 21]


def test_a_delay_of_nine_steps_is_read_as_a_shift_register():
    # Prev9: a 10-unit delay line; the Toeplitz reading used to look back at most 8 steps
    model = RNN(1, 10, 1)
    weight, bias = _shift_register(10)
    _set(model.f[0], weight, bias)
    _set(model.g[0], [np.eye(10)[9]], [0.0])
    assert memory_length(model) == 10
    x, _ = get_task("Prev9").generate(300, seed=0)
    hidden, predicted = hidden_trace(model, x)
    trace = read_shift_register(model, hidden, x, predicted)
    assert trace is not None and trace.detail["dims"] == 10
    program = programs_from_trace(trace)[0]
    _verified_beyond(program, "Prev9")


def test_parity_of_the_last_ten_bits():
    # a 10-unit delay line and a ReLU readout folding the window's sum into its parity
    model = RNN(1, 10, 1, g_depth=2, width=11)
    weight, bias = _shift_register(10)
    _set(model.f[0], weight, bias)
    _set(model.g[0], np.ones((11, 10)), -np.arange(11.0))  # unit j: relu(sum - j)
    _set(model.g[2], [[1.0] + [(-2.0) * (-1) ** (j + 1) for j in range(1, 11)]], [0.0])
    x, y = get_task("Parity_Last10").generate(400, seed=0)
    hidden, predicted = hidden_trace(model, x)
    assert np.array_equal(predicted, y)
    trace = read_shift_register(model, hidden, x, predicted)
    assert trace is not None
    program = programs_from_trace(trace)[0]
    _verified_beyond(program, "Parity_Last10")


def test_an_adder_mod_20_becomes_a_program_mod_20():
    # moduli stopped at 16 in the regression; a mod-20 machine with scrambled labels
    task = get_task("Add_Mod_20")
    x, y = task.generate(300, seed=0)
    running = np.concatenate([np.zeros((300, 1), dtype=np.int64), y[..., 0]], axis=1)
    scramble = np.random.default_rng(0).permutation(20)
    trace = StateTrace(states=scramble[running][..., None], inputs=x, outputs=y, method="fsm",
                       detail={"n_states": 20, "pc_order": list(range(20))})  # fmt: skip
    programs = fsm_programs(trace)
    assert programs and "% 20" in programs[0].source
    _verified_beyond(programs[0], "Add_Mod_20")


def test_base_17_addition_becomes_digit_and_carry():
    task = get_task("Base_17_Addition")
    x, y = task.generate(600, seed=0)
    k = 17
    v = np.zeros((600, x.shape[1] + 1), dtype=np.int64)
    for t in range(x.shape[1]):
        v[:, t + 1] = v[:, t] // k + x[:, t, 0] + x[:, t, 1]
    scramble = np.random.default_rng(0).permutation(2 * k)
    trace = StateTrace(states=scramble[v][..., None], inputs=x, outputs=y, method="fsm",
                       detail={"n_states": 2 * k, "pc_order": scramble.tolist()})  # fmt: skip
    programs = fsm_programs(trace, max_permutations=0)
    right = [p for p in programs if "17" in p.source]
    assert right, [p.source for p in programs]
    _verified_beyond(right[0], "Base_17_Addition")


@pytest.mark.parametrize(
    ("rows", "target", "expected"),
    [
        ([[s, x] for s in range(25) for x in range(25)], [(s + x) % 25 for s in range(25) for x in range(25)],
         "(s + x0) % 25"),
        ([[s, x] for s in range(2) for x in range(40)], [(s + x) // 20 for s in range(2) for x in range(40)],
         "(s + x0) // 20"),
    ],
)  # fmt: skip
def test_wide_modular_fit_reads_its_moduli_off_the_table(rows, target, expected):
    assert wide_modular_fit(np.array(rows), np.array(target), ["s", "x0"]) == expected
    assert wide_modular_fit(np.array(rows), np.array(target) * 1000 + 7, ["s", "x0"]) is None


def test_out_of_benchmark_tasks_are_built_on_demand():
    for name, length in (("Sum_Last10", 20), ("Parity_Last10", 20), ("Add_Mod_17", 10), ("Prev9", 20)):
        task = get_task(name)
        assert task.length == length
        x, y = task.generate(20, seed=1)
        assert all(task.reference(x[i]) == y[i].tolist() for i in range(20))
    assert get_task("Add_Mod_32").outputs(np.array([[31, 1, 5]]))[0, :, 0].tolist() == [31, 0, 5]
