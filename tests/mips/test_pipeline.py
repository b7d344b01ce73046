"""MIPS pipeline pieces: lattice finder, state readers, program emission and verification, with
hand-built RNNs whose algorithm is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.mips.extract import find_lattice, hidden_trace, read_fsm, read_lattice
from intelligible.mips.program import Program, programs_from_trace, verify
from intelligible.mips.rnn import RNN, sequence_accuracy
from intelligible.mips.tasks import get_task


def _set(linear: torch.nn.Linear, weight, bias) -> None:
    with torch.no_grad():
        linear.weight.copy_(torch.tensor(np.asarray(weight, dtype=np.float32)))
        linear.bias.copy_(torch.tensor(bias, dtype=torch.float32))


def _solve_with(model: RNN, task_name: str, n: int = 300) -> tuple[Program, object]:
    task = get_task(task_name)
    x, y = task.generate(n, seed=0)
    x_test, y_test = task.generate(2000, seed=1)
    assert sequence_accuracy(model, torch.as_tensor(x_test, dtype=torch.float32),
                             torch.as_tensor(y_test, dtype=torch.float32)) == 1.0  # fmt: skip
    hidden, predicted = hidden_trace(model, x)
    trace = read_fsm(model, hidden, x, predicted) or read_lattice(model, hidden, x, predicted)
    assert trace is not None
    programs = programs_from_trace(trace)
    assert programs, "no program"
    ok, bad = verify(programs[0], x_test, y_test)
    assert ok, (programs[0].source, bad)
    return programs[0], trace


def test_hand_built_sum_all_rnn_becomes_a_running_sum():
    task = get_task("Sum_All")
    model = RNN(task.input_dim, 1, task.output_dim)
    _set(model.f[0], [[1.0, 1.0]], [0.0])  # h' = h + x
    _set(model.g[0], [[1.0]], [0.0])  # y = h
    program, trace = _solve_with(model, "Sum_All")
    assert trace.method == "lattice"
    assert "s0 + x0" in program.source.replace("x0 + s0", "s0 + x0")
    assert program.compile()([[1], [2], [3]]) == [[1], [3], [6]]


def test_hand_built_xor_rnn_becomes_xor():
    task = get_task("Bitwise_Xor")
    assert task.input_dim == 2
    model = RNN(2, 1, 1, f_depth=2, width=2)
    # u1 = relu(x0 + x1), u2 = relu(x0 + x1 - 1), h = u1 - 2 u2 = x0 xor x1
    _set(model.f[0], [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]], [0.0, -1.0])
    _set(model.f[2], [[1.0, -2.0]], [0.0])
    _set(model.g[0], [[1.0]], [0.0])
    program, trace = _solve_with(model, "Bitwise_Xor")
    assert trace.method == "fsm" and trace.detail["n_states"] == 2
    f = program.compile()
    assert f([[0, 0], [0, 1], [1, 0], [1, 1]]) == [[0], [1], [1], [0]]


def test_lattice_finder_recovers_a_planted_lattice():
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 6))
    coords = rng.integers(-5, 6, size=(400, 3))
    points = 0.3 + coords @ basis + rng.normal(scale=1e-5, size=(400, 6))
    origin, found, integers = find_lattice(points)
    assert found.shape == (3, 6)
    # same lattice: the integer coordinates are a unimodular image of the planted ones
    transform, *_ = np.linalg.lstsq(integers.astype(float), (coords - coords[0]).astype(float), rcond=None)
    assert np.allclose(transform, np.round(transform), atol=1e-6)
    assert abs(round(np.linalg.det(transform))) == 1
    np.testing.assert_allclose(origin + integers @ found, points, atol=1e-3)


def test_lattice_finder_refuses_points_off_any_lattice():
    rng = np.random.default_rng(1)
    assert find_lattice(rng.normal(size=(200, 2))) is None


def test_a_program_failing_one_held_out_sequence_is_unsolved():
    # the running sum, except that it forgets everything after 9: wrong only on long high sums
    program = Program(["s0"], [0], ["min(s0 + x0, 9)"], ["s0"], input_dim=1, methods=["SR"])
    inputs = np.zeros((50, 5, 1), dtype=np.int64)
    outputs = np.cumsum(inputs, axis=1)
    inputs[37, :, 0] = [5, 5, 0, 0, 0]
    outputs[37, :, 0] = [5, 10, 10, 10, 10]
    ok, bad = verify(program, inputs, outputs)
    assert not ok and bad == 37


def test_hidden_size_below_one_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"hidden size must be an integer >= 1, got 0"):
        RNN(1, 0, 1)


def test_fsm_of_base_k_addition_is_written_as_digit_and_carry():
    # the Moore machine of base-5 addition with scrambled state labels: the output-factored encoding
    # (the state's output digit, its rank among states with that digit) turns it into // and %
    from intelligible.mips.extract import StateTrace
    from intelligible.mips.program import fsm_programs

    task = get_task("Base_5_Addition")
    x, y = task.generate(400, seed=0)
    k = 5
    v = np.zeros((400, x.shape[1] + 1), dtype=np.int64)
    for t in range(x.shape[1]):
        v[:, t + 1] = v[:, t] // k + x[:, t, 0] + x[:, t, 1]
    scramble = np.random.default_rng(0).permutation(2 * k)
    trace = StateTrace(states=scramble[v][..., None], inputs=x, outputs=y, method="fsm",
                       detail={"n_states": 2 * k, "pc_order": scramble.tolist()})  # fmt: skip
    programs = fsm_programs(trace, max_permutations=0)
    assert programs
    x_test, y_test = task.generate(1000, seed=1)
    assert any(verify(p, x_test, y_test)[0] for p in programs), [p.source for p in programs]


def test_pruning_drops_dead_state_variables():
    program = Program(["s0", "s1", "s2"], [0, 0, 5], ["x0", "s0", "s2 + 1"], ["s1"], input_dim=1)
    pruned = program.pruned()
    assert pruned.state_names == ["s0", "s1"] and pruned.initial == [0, 0]
    assert pruned.compile()([[4], [5], [6]]) == program.compile()([[4], [5], [6]]) == [[0], [4], [5]]


def test_regression_prefers_the_formula_that_generalises():
    # a majority counter seen in [-9, 10]: `(s0 + 9) // 10` fits too, but fails at s0 = -10
    from intelligible.mips.program import regress

    seen = np.arange(-9, 11)
    kind, expression = regress({"s0": seen}, (seen > 0).astype(np.int64), search_size=6)
    assert (kind, expression) == ("SR", "int(s0 > 0)")


def test_smallest_rnn_sweeps_architectures_before_a_second_seed():
    from intelligible.mips.rnn import smallest_rnn
    from intelligible.mips.tasks import split

    x_train, y_train, x_test, y_test = split("Current_Number", 512, 500, 0)
    result, tried = smallest_rnn(1, 1, (x_train, y_train), (x_test, y_test),
                                 architectures=((1, 1, 1), (2, 1, 1)), seeds=(0, 1), steps=600)  # fmt: skip
    assert result is not None and result.model.hidden == 1
    assert [(t["hidden"], t["seed"]) for t in tried] == [(1, 0)]


def test_krylov_basis_keeps_a_small_input_direction_beside_a_large_bias():
    """Newton_Gravity in disguise: s' = [v + x, p + v + x - 1 ... ] written in a frame whose input
    column is 100x shorter than its bias column; the Krylov form must still find all three."""
    from intelligible.mips.extract import krylov_basis
    from intelligible.mips.simplify import integer_krylov_form

    a_s = np.array([[0.0, -1.0, 0.0], [1.0, 2.0, -1.0], [0.0, 0.0, 0.0]])  # companion form + a "seen" flag
    b_s, c_s, g_s = np.array([1.0, 0.0, 0.0]), np.array([0.0, 0.0, 1.0]), np.array([1.0, 2.0, 0.0])
    frame = np.array([[0.03, 0.5, 2.0], [0.01, -0.4, 1.0], [-0.02, 0.3, 3.0]])  # h = frame @ s
    inv = np.linalg.inv(frame)
    model = RNN(1, 3, 1)
    _set(model.f[0], np.hstack([frame @ a_s @ inv, (frame @ b_s)[:, None]]), frame @ c_s)
    _set(model.g[0], [g_s @ inv], [-1.0])
    basis = krylov_basis(model)
    assert basis is not None and basis.shape == (3, 3)
    task = get_task("Newton_Gravity")
    x_test, y_test = task.generate(500, seed=1)
    integer = integer_krylov_form(model, x_test, y_test)
    assert integer is not None
    hidden, _ = hidden_trace(integer, x_test[:50])
    assert np.abs(hidden - np.round(hidden)).max() < 1e-3
    _solve_with(integer, "Newton_Gravity")


def test_debias_moves_a_shift_register_to_its_fixed_point():
    from intelligible.mips.simplify import debias, integer_krylov_form

    model = RNN(1, 2, 1)
    shift, bias = np.array([[0.0, 0.0], [1.0, 0.0]]), np.array([0.3, -0.2])
    fixed = np.linalg.solve(np.eye(2) - shift, bias)
    _set(model.f[0], np.hstack([shift, [[1.0], [0.0]]]), bias)  # h' = (x, h0) + c
    _set(model.g[0], [[1.0, 1.0]], [-float(fixed.sum())])
    task = get_task("Sum_Last2")
    x_test, y_test = task.generate(500, seed=1)
    shifted = debias(model, x_test, y_test)
    assert shifted is not None
    assert torch.equal(shifted.f[0].bias, torch.zeros(2))
    assert float(shifted.g[0].bias) == pytest.approx(0.0, abs=1e-6)
    program, trace = _solve_with(integer_krylov_form(model, x_test, y_test), "Sum_Last2")
    assert program.compile()([[1], [2], [3]]) == [[1], [3], [5]]
    # an integrator has no fixed point: its bias is a real drive and stays
    integrator = RNN(1, 1, 1)
    _set(integrator.f[0], [[1.0, 1.0]], [-1.0])
    assert debias(integrator, x_test, y_test) is None


def test_an_architecture_may_set_its_own_width_and_learning_rate():
    from intelligible.mips.rnn import smallest_rnn
    from intelligible.mips.tasks import split

    x_train, y_train, x_test, y_test = split("Current_Number", 256, 200, 0)
    _, tried = smallest_rnn(1, 1, (x_train, y_train), (x_test, y_test),
                            architectures=((1, 2, 1, 8, 5e-3), (1, 2, 1)), seeds=(0,), steps=20)  # fmt: skip
    assert [(t["width"], t["lr"]) for t in tried[:2]] == [(8, 5e-3), (16, 1e-2)]
