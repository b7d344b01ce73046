"""The circular-order statistic, the prompt sets, residual collection and circle patching on a tiny LM."""

from __future__ import annotations

import numpy as np
import pytest

from intelligible.core.errors import ModelError
from intelligible.multidim.circles import (
    PromptSet,
    answer_token_ids,
    circle_r2,
    circular_order_correlation,
    collect_residuals,
    layer_circles,
    month_prompts,
    patch_circle,
    rotation_step,
    score_task,
    weekday_prompts,
)


def _planted(period: int, per_item: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(period), per_item)
    angle = 2 * np.pi * labels / period
    return np.stack([np.cos(angle), np.sin(angle)], axis=1) + noise * rng.standard_normal(
        (len(labels), 2)
    ), labels


def test_a_planted_circle_beats_its_null_and_noise_does_not():
    plane, labels = _planted(12, 12, 0.1, seed=0)
    found = circular_order_correlation(plane + 5.0, labels, 12, n_permutations=500)  # off-centre is fine
    assert found.correlation > 0.9 and found.correlation > found.null_p99 and found.p_value < 0.01
    noise = circular_order_correlation(np.random.default_rng(1).standard_normal((144, 2)), labels, 12,
                                       n_permutations=500)  # fmt: skip
    assert noise.correlation < noise.null_p99 and noise.p_value > 0.05
    assert circle_r2(plane, labels, 12) > 0.9
    means = np.stack([plane[labels == i].mean(axis=0) for i in range(12)])
    assert abs(rotation_step(means) - 2 * np.pi / 12) < 0.05


def test_the_paper_prompt_sets():
    days, months = weekday_prompts(), month_prompts()
    assert len(days.prompts) == 49 and len(months.prompts) == 144
    assert days.prompts[1] == "Let's do some days of the week math. Two days from Monday is"
    assert days.answer[1] == 2  # Monday + 2 = Wednesday


class _CharTokenizer:
    def __call__(self, text, add_special_tokens=False, verbose=False):  # noqa: ARG002
        return {"input_ids": [ord(c) for c in text]}


class _FakeLM:
    name = "chars"
    tokenizer = _CharTokenizer()


def test_answer_words_must_be_single_tokens():
    with pytest.raises(ModelError, match=r"'Monday' is 7 tokens for chars, not one"):
        answer_token_ids(_FakeLM(), ("Monday",))


def test_unknown_answer_words_are_refused(tiny_llama_lm):
    with pytest.raises(ModelError, match="'Monday' is not in tiny-llama's vocabulary"):
        collect_residuals(tiny_llama_lm, weekday_prompts())


def _tiny_set() -> PromptSet:
    # items the tiny word-level tokenizer knows; the rest of the template maps to <unk>, which is fine
    return PromptSet("tiny", tuple(f"w{i}" for i in range(1, 8)), "w50 w51 {duration} from {item} is",
                     ("day", "days"), (1, 2, 3))  # fmt: skip


def test_residuals_circles_and_patching_on_a_tiny_lm(tiny_llama_lm):
    prompts = _tiny_set()
    residuals = collect_residuals(tiny_llama_lm, prompts)
    assert residuals.states.shape == (tiny_llama_lm.n_layers + 1, 21, tiny_llama_lm.d_model)
    assert residuals.answer_logits.shape == (21, 7)
    assert 0 <= score_task(residuals, prompts) <= 21
    layers = layer_circles(residuals, prompts, n_permutations=50)
    assert len(layers) == tiny_llama_lm.n_layers + 1
    moved = patch_circle(tiny_llama_lm, prompts, residuals, layer=2)
    assert set(moved) == {"moved", "unpatched", "p_target_before", "p_target_after"}
    assert all(0.0 <= v <= 1.0 for v in moved.values())
