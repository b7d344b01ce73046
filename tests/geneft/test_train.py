"""The batched trainer against single-model training, the phases, and bad training inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from intelligible.core.errors import ConfigError
from intelligible.geneft.model import ModelSpec, SingleModel, forward, ideal_decoder_for, stack_params
from intelligible.geneft.relations import get_relation, matrix_relation
from intelligible.geneft.train import RunResult, RunSpec, classify, train_batched, train_single


def test_batched_forward_equals_the_module():
    spec = ModelSpec(n=6, depth=3, width=7)
    params = stack_params(spec, [3, 4])
    pairs = torch.arange(36).expand(2, -1)
    batched = forward(spec, params, pairs)
    for i, seed in enumerate((3, 4)):
        torch.testing.assert_close(batched[i], SingleModel(spec, seed)(torch.arange(36)))


@pytest.mark.parametrize(
    ("relation", "spec"),
    [("mod2", ModelSpec(n=6, depth=3, width=8)),
     ("greater", ModelSpec(n=6, combiner="difference", depth=2, width=5)),
     ("mod3", ModelSpec(n=6, combiner="squared-difference", depth=1)),
     ("mod3", ModelSpec(n=6, decoder="ideal-distance")),
     ("greater", ModelSpec(n=6, decoder="ideal-order")),
     ("bipartite2", ModelSpec(n=6, decoder="ideal-product", embed_dim=3))],
    ids=["mlp-concat", "mlp-difference", "linear-squared", "ideal-distance", "ideal-order", "ideal-product"],
)  # fmt: skip
def test_vectorised_training_equals_single_model_training(relation, spec):
    relation = get_relation(relation, 6)
    runs = [RunSpec(0, 0.5, 0.03, 0.01), RunSpec(1, 0.8, 0.005, 0.05), RunSpec(2, 0.3, 0.02, 0.02)]
    batched = train_batched(relation, spec, runs, 45, eval_every=15)
    for run, together in zip(runs, batched):
        alone = train_single(relation, spec, run, 45, eval_every=15)
        assert together.steps == alone.steps == [15, 30, 45]
        assert together.final_loss == pytest.approx(alone.final_loss, rel=1e-3, abs=1e-5)
        np.testing.assert_allclose(together.train_accuracy, alone.train_accuracy)
        np.testing.assert_allclose(together.test_accuracy, alone.test_accuracy)


def test_one_batch_mixes_relations_and_each_run_is_its_own():
    spec = ModelSpec(n=6, depth=2, width=6)
    relations = [get_relation("mod2", 6), get_relation("greater", 6)]
    runs = [RunSpec(5, 0.5, 0.02, 0.02), RunSpec(5, 0.5, 0.02, 0.02)]
    mixed = train_batched(relations, spec, runs, 40, eval_every=40)
    for relation, run, result in zip(relations, runs, mixed):
        alone = train_batched(relation, spec, [run], 40, eval_every=40)[0]
        assert result.final_loss == pytest.approx(alone.final_loss, rel=1e-4)
    assert mixed[0].final_loss != pytest.approx(mixed[1].final_loss)


def test_a_tiny_problem_is_learned():
    relation = get_relation("mod2", 8)
    result = train_batched(
        relation, ModelSpec(n=8, decoder="ideal-distance"), [RunSpec(0, 0.6, 0.05, 0.05)], 300
    )[0]
    assert result.train == 1.0 and result.test > 0.9


def test_phases_from_curves():
    def curve(train, test):
        return classify(
            RunResult(RunSpec(0, 0.5, 1e-3, 1e-3), [500, 1000, 2000, 4000], train, test, 0.0), 0.9, 1000
        )

    assert curve([0.5, 0.95, 1, 1], [0.5, 0.92, 1, 1]).phase == "generalisation"
    assert curve([0.5, 0.95, 1, 1], [0.5, 0.6, 0.7, 0.95]).phase == "grokking"
    assert curve([0.5, 0.95, 1, 1], [0.5, 0.6, 0.6, 0.6]).phase == "memorisation"
    assert curve([0.5, 0.6, 0.6, 0.7], [0.5, 0.6, 0.6, 0.6]).phase == "confusion"
    assert curve([0.5, 0.95, 1, 1], [0.5, 0.6, 0.7, 0.95]).generalised_at == 4000


def test_ideal_decoder_follows_the_axioms():
    assert ideal_decoder_for(get_relation("mod5", 30)) == "ideal-distance"
    assert ideal_decoder_for(get_relation("greater", 30)) == "ideal-order"
    assert ideal_decoder_for(get_relation("bipartite10", 30)) == "ideal-product"
    with pytest.raises(ConfigError, match="no ideal decoder"):
        ideal_decoder_for(matrix_relation(np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0]])))


def test_bad_training_inputs():
    relation = get_relation("mod2", 6)
    spec = ModelSpec(n=6)
    with pytest.raises(ConfigError, match="lr_encoder must be a finite number above 0, got 0"):
        train_batched(relation, spec, [RunSpec(0, 0.5, 0.0, 0.01)], 5)
    with pytest.raises(ConfigError, match="lr_decoder must be a finite number above 0, got -0.1"):
        train_single(relation, spec, RunSpec(0, 0.5, 0.01, -0.1), 5)
    with pytest.raises(ConfigError, match=r"fraction must be a share of the n\^2 pairs in \(0, 1\], got 1.5"):
        train_batched(relation, spec, [RunSpec(0, 1.5, 0.01, 0.01)], 5)
    with pytest.raises(ConfigError, match="fraction .* got 0"):
        train_batched(relation, spec, [RunSpec(0, 0.0, 0.01, 0.01)], 5)
    with pytest.raises(ConfigError, match="relation 'mod2' has 6"):
        train_batched(relation, ModelSpec(n=8), [RunSpec(0, 0.5, 0.01, 0.01)], 5)
    with pytest.raises(ConfigError, match="combiner must be one of"):
        train_batched(relation, ModelSpec(n=6, combiner="sum"), [RunSpec(0, 0.5, 0.01, 0.01)], 5)


def test_full_data_reports_training_accuracy_as_test():
    result = train_batched(
        get_relation("mod2", 4), ModelSpec(n=4, width=4), [RunSpec(0, 1.0, 0.01, 0.01)], 10
    )[0]
    assert result.test == result.train


def test_mixed_depths_in_one_batch_equal_each_depth_alone():
    relation = get_relation("mod3", 6)
    spec = ModelSpec(n=6, width=5)
    depths = [1, 2, 4, 3]
    runs = [RunSpec(seed, 0.5, 0.02, 0.02) for seed in range(4)]
    mixed = train_batched(relation, spec, runs, 30, eval_every=15, depths=depths)
    for depth, run, result in zip(depths, runs, mixed):
        alone = train_single(relation, ModelSpec(n=6, width=5, depth=depth), run, 30, eval_every=15)
        assert result.final_loss == pytest.approx(alone.final_loss, rel=1e-3, abs=1e-5), depth
        np.testing.assert_allclose(result.test_accuracy, alone.test_accuracy)


def test_chunks_of_a_batch_train_like_the_whole_batch():
    relation = get_relation("mod3", 6)
    spec = ModelSpec(n=6, width=5)
    runs = [RunSpec(seed, 0.5, 0.02 * (1 + seed), 0.01) for seed in range(5)]
    whole = train_batched(relation, spec, runs, 20, eval_every=10, keep_embeddings=(3,))
    chunked = train_batched(relation, spec, runs, 20, eval_every=10, keep_embeddings=(3,), chunk=2)
    for a, b in zip(whole, chunked):
        assert a.run == b.run and a.final_loss == pytest.approx(b.final_loss, rel=1e-5)
    np.testing.assert_allclose(whole[3].embeddings[-1], chunked[3].embeddings[-1], rtol=1e-5)
    assert chunked[2].embeddings == []


def test_a_correlated_run_trains_on_its_correlated_split_in_both_trainers():
    from intelligible.geneft.statics import correlated_split

    relation = get_relation("mod3", 9)
    spec = ModelSpec(n=9, depth=2, width=6)
    runs = [RunSpec(0, 0.4, 0.02, 0.02, redundancy=0.6), RunSpec(0, 0.4, 0.02, 0.02)]
    together = train_batched(relation, spec, runs, 30, eval_every=30)
    for run, result in zip(runs, together):
        alone = train_single(relation, spec, run, 30, eval_every=30)
        assert result.final_loss == pytest.approx(alone.final_loss, rel=1e-4)
    assert together[0].final_loss != pytest.approx(together[1].final_loss)
    # the training accuracy is measured on the correlated split's pairs: fitting exactly those pairs
    index = correlated_split(relation, 0.4, 0, 0.6)
    assert len(index) == 32
    with pytest.raises(ConfigError, match="redundancy must be a share"):
        train_batched(relation, spec, [RunSpec(0, 0.4, 0.02, 0.02, redundancy=1.0)], 5)
