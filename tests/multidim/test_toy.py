"""The toy transformer: data, a planted circle found, and rotations that move (or keep) the answer."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.multidim.toy import (
    TASKS,
    ToyConfig,
    ToyTransformer,
    Vocabulary,
    _rotation_edit,
    all_sequences,
    find_circle,
    random_plane,
    rotate_circle,
    task_examples,
)


def test_the_task_data():
    vocab = Vocabulary()
    tokens, targets, meta = task_examples(vocab)
    assert tokens.shape == (49 + 144, 4) and len(meta) == 193
    task, x, k = meta[1]
    assert (task, x, k) == ("weekdays", 0, 2) and int(targets[1]) == vocab.item("weekdays", 2)
    every, answers = all_sequences(vocab)
    assert len(every) == (7 + 12) * 12 * 13
    assert int(answers[0]) == vocab.item("weekdays", 1)  # Monday + 1 + 0


def _model_with_planted_items(task: str, row_of) -> tuple[ToyTransformer, Vocabulary]:  # noqa: ANN001
    """A random toy model whose `task` items embed as row_of(x) (16 dims), with no position vectors."""
    torch.manual_seed(0)
    cfg = ToyConfig(d_model=16, d_mlp=32, n_heads=2)
    vocab = Vocabulary()
    model = ToyTransformer(cfg, vocab.size).eval()
    with torch.no_grad():
        model.pos.zero_()
        for x in range(TASKS[task]):
            model.embed.weight[vocab.item(task, x)] = row_of(x)
    return model, vocab


def _model_with_a_planted_circle() -> tuple[ToyTransformer, Vocabulary]:
    def row_of(x: int) -> torch.Tensor:  # weekdays on a circle of radius 3 in dims 0-1, the rest small noise
        row = 0.01 * torch.randn(16)
        row[0], row[1] = 3 * math.cos(2 * math.pi * x / 7), 3 * math.sin(2 * math.pi * x / 7)
        return row

    return _model_with_planted_items("weekdays", row_of)


def test_find_circle_recovers_a_planted_circle():
    model, vocab = _model_with_a_planted_circle()
    circle = find_circle(model, vocab, "weekdays", 0)
    assert abs(abs(circle.step_angle) - 2 * math.pi / 7) < 0.01
    assert circle.order_correlation > 0.9
    assert abs(circle.basis[:, :2]).sum() > 1.9  # the plane is dims 0-1


def test_find_circle_skips_frequencies_that_do_not_visit_every_item():
    # months on a strong frequency-6 "circle" (a line: +-1 alternating) and a weaker frequency-4 triangle
    # (period 3), with the frequency-1 circle weakest: only the last one tells every month apart
    def row_of(x: int) -> torch.Tensor:
        row = torch.zeros(16)
        row[0] = 5 * (-1) ** x
        row[1], row[2] = 4 * math.cos(2 * math.pi * 4 * x / 12), 4 * math.sin(2 * math.pi * 4 * x / 12)
        row[3], row[4] = math.cos(2 * math.pi * x / 12), math.sin(2 * math.pi * x / 12)
        return row

    model, vocab = _model_with_planted_items("months", row_of)
    circle = find_circle(model, vocab, "months", 0)
    assert circle.frequency == 1
    assert abs(circle.basis[:, 3:5]).sum() > 1.9  # the plane is dims 3-4
    assert abs(abs(circle.step_angle) - 2 * math.pi / 12) < 0.01
    assert circle.variance_share == pytest.approx(1 / (25 + 16 + 1), rel=1e-3)
    shares = dict(enumerate(circle.frequency_shares, start=1))
    assert shares[6] == pytest.approx(25 / 42, rel=1e-3) and shares[4] == pytest.approx(16 / 42, rel=1e-3)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_a_full_turn_keeps_every_answer_and_one_step_moves_the_answer_distribution():
    model, vocab = _model_with_a_planted_circle()
    circle = find_circle(model, vocab, "weekdays", 0)
    full_turn = rotate_circle(model, vocab, circle, items=TASKS["weekdays"])
    assert full_turn["unchanged"] == pytest.approx(1.0)
    tokens, _, meta = task_examples(vocab)
    tokens = tokens[[n for n, m in enumerate(meta) if m[0] == "weekdays"]]
    with torch.no_grad():
        clean = model(tokens).softmax(-1)
        step = model(
            tokens, edit=(0, _rotation_edit(circle.basis, circle.centre, circle.step_angle))
        ).softmax(-1)
        turn = model(
            tokens, edit=(0, _rotation_edit(circle.basis, circle.centre, 7 * circle.step_angle))
        ).softmax(-1)
    assert (step - clean).abs().sum(-1).min() > 1e-4  # every prompt's answer distribution moves
    assert (turn - clean).abs().max() < 1e-4  # a whole turn is the identity on the circle
    control = rotate_circle(model, vocab, circle, basis=random_plane(16, seed=3))
    assert 0.0 <= control["moved_as_predicted"] <= 1.0


def test_bad_toy_settings():
    with pytest.raises(ConfigError, match="multiple of n_heads"):
        ToyConfig(d_model=30, n_heads=4).validate()
    model, vocab = _model_with_a_planted_circle()
    with pytest.raises(ConfigError, match="unknown toy task 'years'"):
        find_circle(model, vocab, "years", 0)
    with pytest.raises(ConfigError, match=r"layer must be in 0..0"):
        find_circle(model, vocab, "weekdays", 1)
    assert np.allclose(random_plane(8, 0) @ random_plane(8, 0).T, np.eye(2))
