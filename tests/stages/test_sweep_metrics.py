"""Sweep correctness (prefix reuse == naive), metrics against hand computation, resume."""

from __future__ import annotations

import math

import pytest
import torch

from intelligible.core.errors import ConfigError, DataError, ModelError
from intelligible.stages import (
    MetricSums,
    custom_intervention,
    make_interventions,
    reference_from_logits,
    run_sweep,
)


def test_interventions_cover_every_delete_and_swap():
    edits = make_interventions(4)
    assert [e.name for e in edits] == [
        "delete 0", "swap 0-1", "delete 1", "swap 1-2", "delete 2", "swap 2-3", "delete 3",
    ]  # fmt: skip
    assert edits[1].order == (1, 0, 2, 3)
    assert [e.name for e in make_interventions(4, ("swap",), layers=[2, 3])] == ["swap 2-3"]
    with pytest.raises(ConfigError, match="unknown intervention kind"):
        make_interventions(4, ("shuffle",))
    with pytest.raises(ConfigError, match="layer index 7 is out of range"):
        make_interventions(4, layers=[7])


def test_prefix_reuse_equals_naive(trained_lm, trained_windows):
    fast = run_sweep(trained_lm, trained_windows, batch_size=4, show_progress=False)
    naive = run_sweep(trained_lm, trained_windows, batch_size=4, reuse_prefix=False, show_progress=False)
    assert len(fast.rows) == 7 and fast.tokens == 6 * 23
    for a, b in zip(fast.rows, naive.rows):
        assert a["name"] == b["name"]
        for key in ("accuracy", "retained_accuracy", "kl", "loss", "loss_change", "entropy"):
            assert a[key] == pytest.approx(b[key], abs=1e-5), (a["name"], key)


def test_sweep_rows_equal_direct_forward(trained_lm, trained_windows):
    result = run_sweep(trained_lm, trained_windows, show_progress=False)
    base = trained_lm(trained_windows)
    for row, edit in zip(result.rows, make_interventions(trained_lm.n_layers)):
        edited = trained_lm(trained_windows, edit.order)
        sums = MetricSums()
        sums.add(edited, reference_from_logits(base, trained_windows))
        expected = sums.summary()
        assert row["accuracy"] == pytest.approx(expected["accuracy"], abs=1e-9)
        assert row["kl"] == pytest.approx(expected["kl"], abs=1e-5)
        assert row["retained_accuracy"] == pytest.approx(expected["accuracy"] / result.baseline["accuracy"])
        assert row["loss_change"] == pytest.approx(expected["loss"] - result.baseline["loss"], abs=1e-5)
    assert result.baseline["kl"] == pytest.approx(0.0, abs=1e-6)


def test_custom_permutation(trained_lm, trained_windows):
    result = run_sweep(
        trained_lm,
        trained_windows,
        [custom_intervention([0, 1, 2, 3]), custom_intervention([3, 2, 1, 0])],
        show_progress=False,
    )
    assert result.rows[0]["kl"] == pytest.approx(0.0, abs=1e-6)
    assert result.rows[0]["retained_accuracy"] == pytest.approx(1.0)
    assert result.rows[1]["kl"] > 0.01
    with pytest.raises(ModelError, match="out of range"):
        run_sweep(trained_lm, trained_windows, [custom_intervention([0, 9])], show_progress=False)


def test_metrics_by_hand():
    # two windows of 3 tokens, vocab 3: positions 0 and 1 of each window are predicted
    ids = torch.tensor([[0, 1, 2], [0, 2, 2]])
    ref_logits = torch.tensor(
        [
            [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [9.0, 9.0, 9.0]],
            [[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [9.0, 9.0, 9.0]],
        ]
    )
    edit_logits = torch.tensor(
        [
            [[0.0, 2.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            [[0.0, 0.0, 2.0], [0.0, 0.0, 0.0], [5.0, 0.0, 0.0]],
        ]
    )
    sums = MetricSums()
    sums.add(edit_logits, reference_from_logits(ref_logits, ids))
    got = sums.summary()

    def softmax(row):
        exps = [math.exp(v) for v in row]
        return [e / sum(exps) for e in exps]

    targets = [1, 2, 2, 2]
    refs = [softmax(r) for r in ([2, 1, 0], [0, 0, 3], [0, 1, 0], [1, 1, 1])]
    edits = [softmax(r) for r in ([0, 2, 0], [1, 0, 0], [0, 0, 2], [0, 0, 0])]
    correct = [1, 0, 1, 0]  # argmax of the edited rows: 1, 0, 2, and 0 (ties go to the first)
    assert got["tokens"] == 4
    assert got["accuracy"] == pytest.approx(sum(correct) / 4)
    assert got["loss"] == pytest.approx(sum(-math.log(e[t]) for e, t in zip(edits, targets)) / 4)
    kl = sum(sum(p * math.log(p / q) for p, q in zip(r, e)) for r, e in zip(refs, edits)) / 4
    assert got["kl"] == pytest.approx(kl, rel=1e-5)
    entropy = sum(-sum(q * math.log(q) for q in e) for e in edits) / 4
    assert got["entropy"] == pytest.approx(entropy, rel=1e-5)


def test_resume_gives_the_same_result(trained_lm, trained_windows):
    states = []
    full = run_sweep(
        trained_lm, trained_windows, batch_size=2, on_batch=lambda s: states.append(s), show_progress=False
    )
    assert [s["batches_done"] for s in states] == [1, 2, 3]
    resumed = run_sweep(
        trained_lm, trained_windows, batch_size=2, resume_state=states[0], show_progress=False
    )
    for a, b in zip(full.rows, resumed.rows):
        assert a["kl"] == pytest.approx(b["kl"], abs=1e-9)
        assert a["accuracy"] == pytest.approx(b["accuracy"], abs=1e-12)
    with pytest.raises(ConfigError, match="saved sweep state is for other"):
        run_sweep(trained_lm, trained_windows, batch_size=3, resume_state=states[0], show_progress=False)


@pytest.mark.parametrize(
    ("windows_", "message"),
    [(torch.zeros(0, 5, dtype=torch.long), "at least one window"), (torch.zeros(2, 1, dtype=torch.long), "at least 2 tokens"),
     (torch.full((1, 4), 10_000), "token ids must lie in"), (torch.zeros(4, dtype=torch.long), r"\(n_windows, seq_len\)")],
)  # fmt: skip
def test_bad_windows(tiny_llama_lm, windows_, message):
    with pytest.raises(DataError, match=message):
        run_sweep(tiny_llama_lm, windows_, show_progress=False)


def test_bad_batch_size(tiny_llama_lm):
    with pytest.raises(ConfigError, match="batch_size must be at least 1"):
        run_sweep(tiny_llama_lm, torch.ones(2, 5, dtype=torch.long), batch_size=0, show_progress=False)


def test_trained_model_is_better_than_chance_and_edits_hurt(trained_lm, trained_windows):
    result = run_sweep(trained_lm, trained_windows, show_progress=False)
    assert result.baseline["accuracy"] > 0.2
    assert min(row["retained_accuracy"] for row in result.rows) < 0.95
    assert all(row["kl"] > 0 for row in result.rows)
