"""The SAE study at scale: the truncated forward, the resumable activation cache, the large corpus,
until-flat training and the claims that depend on them."""

from __future__ import annotations

import json

import pytest
import torch
from tests.conftest import SAMPLE_TEXT

from intelligible.core.errors import ConfigError, DataError
from intelligible.core.runs import RunDir
from intelligible.lm.text import load_text, python_docs_folder, token_windows
from intelligible.sae import TopKSAE
from intelligible.sae import activations as acts_module
from intelligible.sae.activations import cache_folder, cache_key, collect_activations, residual_at
from intelligible.sae.experiment import _relu_claim
from intelligible.sae.train import TensorBatches, TrainConfig, decay_end, lr_factor, plateau_reached, train


def _windows(lm, n=10, seq_len=8):
    return token_windows(
        lm.tokenizer, SAMPLE_TEXT, seq_len=seq_len, n_windows=n, bos_token_id=lm.bos_token_id
    )


@pytest.mark.parametrize("layer", [0, 1, 2])
def test_truncated_forward_equals_the_full_forward(tiny_llama_lm, layer):
    lm = tiny_llama_lm
    windows = _windows(lm, n=3)
    with torch.no_grad():
        full = lm.hf_model(windows, output_hidden_states=True).hidden_states[layer + 1]
    torch.testing.assert_close(residual_at(lm, windows, layer), full, atol=1e-5, rtol=1e-5)


def test_cache_resumes_without_duplicating_or_losing_tokens(tiny_llama_lm, tmp_path, monkeypatch):
    lm = tiny_llama_lm
    windows = _windows(lm, n=10)
    straight = collect_activations(lm, windows, layer=1, batch_size=2)
    real_run, calls = acts_module._run, []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the third shard is computed
        return real_run(*args, **kwargs)

    monkeypatch.setattr(acts_module, "_run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        collect_activations(lm, windows, layer=1, batch_size=2, cache_dir=tmp_path, shard_windows=3)
    folder = cache_folder(tmp_path, cache_key(lm, windows, 1))
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [shard["windows"] for shard in manifest["shards"]] == [3, 3]  # two finished shards kept
    monkeypatch.setattr(acts_module, "_run", real_run)
    resumed = collect_activations(lm, windows, layer=1, batch_size=2, cache_dir=tmp_path, shard_windows=3)
    torch.testing.assert_close(resumed.values, straight.values)
    assert resumed.values.shape[0] == 10 * 7  # every non-BOS token once
    assert (resumed.stats.shards_reused, resumed.stats.shards_computed) == (2, 2)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [shard["windows"] for shard in manifest["shards"]] == [3, 3, 3, 1]
    again = collect_activations(lm, windows, layer=1, cache_dir=tmp_path)
    assert again.stats.shards_computed == 0 and again.stats.tokens_per_s > 0
    torch.testing.assert_close(again.values, straight.values)


def test_caches_of_different_inputs_live_side_by_side(tiny_llama_lm, tmp_path):
    lm = tiny_llama_lm
    windows = _windows(lm, n=4)
    a = collect_activations(lm, windows, layer=0, cache_dir=tmp_path)
    b = collect_activations(lm, windows, layer=1, cache_dir=tmp_path)
    c = collect_activations(lm, windows[:2], layer=0, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 3
    torch.testing.assert_close(collect_activations(lm, windows, layer=0, cache_dir=tmp_path).values, a.values)
    assert not torch.equal(a.values, b.values) and c.values.shape[0] == 2 * 7


def test_damaged_manifest_is_a_data_error(tiny_llama_lm, tmp_path):
    lm = tiny_llama_lm
    windows = _windows(lm, n=2)
    collect_activations(lm, windows, layer=0, cache_dir=tmp_path)
    manifest = cache_folder(tmp_path, cache_key(lm, windows, 0)) / "manifest.json"
    manifest.write_text("{not json")
    with pytest.raises(DataError, match="is damaged .*delete it to rebuild"):
        collect_activations(lm, windows, layer=0, cache_dir=tmp_path)
    with pytest.raises(DataError, match="batch_size and shard_windows must be >= 1"):
        collect_activations(lm, windows, layer=0, batch_size=0)


def test_python_docs_corpus_missing_says_how_to_install(tmp_path):
    with pytest.raises(DataError, match=r"apt-get install python3-doc"):
        python_docs_folder(str(tmp_path / "nothing" / "python3*" / "_sources"))


def test_python_docs_corpus_picks_the_newest_version(tmp_path):
    for version in ("3.9", "3.11"):
        (tmp_path / f"python{version}" / "_sources").mkdir(parents=True)
    assert python_docs_folder(str(tmp_path / "python3*" / "_sources")).parent.name == "python3.11"


@pytest.mark.skipif(not any(True for _ in __import__("glob").glob("/usr/share/doc/python3*/html/_sources")),
                    reason="Debian's python3-doc is not installed (make setup installs it as root)")  # fmt: skip
def test_python_docs_corpus_is_large_and_not_repeated():
    text = load_text("python-docs")
    assert len(text) > 8_000_000  # over 2M SmolLM2 tokens
    paragraphs = [p for p in text.split("\n\n") if len(p) > 200]
    assert len(set(paragraphs)) > 0.95 * len(paragraphs)  # not one document repeated


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"\x00\x01binary", "not a text file")],
)
def test_corpus_folder_rejects_empty_or_binary_sources(tmp_path, content, message):
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "part.txt").write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_text(tmp_path / "corpus")


def test_until_flat_schedule():
    cfg = TrainConfig(steps=1000, decay_fraction=0.2, eval_every=10, plateau_tol=0.01)
    assert decay_end(200, cfg) == 250 and decay_end(900, cfg) == 1000  # the cap's own decay
    assert lr_factor(199, cfg, 200) == 1.0 and lr_factor(225, cfg, 200) == pytest.approx(0.5)
    assert plateau_reached([(10, 2.0), (20, 1.5), (30, 1.49)], cfg) is False  # 1.5 -> 1.49 vs 2.0
    assert plateau_reached([(10, 2.0), (20, 1.5), (30, 1.499), (40, 1.495)], cfg) is True
    for bad, message in (
        (dict(plateau_tol=0.01), "plateau_tol needs eval_every"),
        (dict(eval_every=-1), "eval_every must be >= 0"),
        (dict(eval_every=5, plateau_tol=1.5), "plateau_tol in"),
    ):
        with pytest.raises(ConfigError, match=message):
            TrainConfig(**bad).validate()


def _signal(n=4096, d=16, seed=0):
    generator = torch.Generator().manual_seed(seed)
    directions = torch.randn(64, d, generator=generator)
    weights = torch.zeros(n, 64)
    weights.scatter_(
        1, torch.randint(0, 64, (n, 3), generator=generator), torch.rand(n, 3, generator=generator) + 0.5
    )
    return weights @ directions + 2.0


def test_training_stops_when_the_heldout_curve_flattens_and_resumes(tmp_path):
    data, heldout = _signal(4608)[:4096], _signal(4608)[4096:]  # one distribution, split
    cfg = TrainConfig(steps=5000, batch=256, lr=3e-3, eval_every=25, plateau_tol=0.02, checkpoint_every=50)
    model = TopKSAE(16, 64, k=4)
    history = train(model, TensorBatches(data, 256), cfg, heldout=heldout, show_progress=False)
    assert history.flattened is True and history.steps < 4000 == int(5000 * 0.8)
    assert history.steps == decay_end(history.decay_start, cfg) and history[-1]["lr"] < 3e-3 * 0.02
    steps = [step for step, _ in history.curve]
    assert steps == list(range(25, history.steps + 1, 25))[: len(steps)] and len(steps) >= 3
    assert history.curve[-1][1] < 0.5 * history.curve[0][1]

    class Interrupted(TensorBatches):
        def batch_at(self, step):
            if step == history.decay_start + 10:
                raise KeyboardInterrupt  # after the plateau, inside the decay
            return super().batch_at(step)

    run = RunDir.create(tmp_path / "run", cfg, cfg.seed)
    with pytest.raises(KeyboardInterrupt):
        train(
            TopKSAE(16, 64, k=4), Interrupted(data, 256), cfg, run=run, heldout=heldout, show_progress=False
        )
    resumed_model = TopKSAE(16, 64, k=4, seed=3)
    resumed = train(resumed_model, TensorBatches(data, 256), cfg, run=run, resume=True, heldout=heldout,
                    show_progress=False)  # fmt: skip
    assert resumed.decay_start == history.decay_start and resumed.steps == history.steps
    assert [step for step, _ in resumed.curve] == [step for step, _ in history.curve]
    assert [mse for _, mse in resumed.curve] == pytest.approx([mse for _, mse in history.curve], rel=1e-4)
    for a, b in zip(model.parameters(), resumed_model.parameters()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)
    assert [row["step"] for row in run.read_metrics()] == list(range(history.steps))


def test_training_that_never_flattens_says_so():
    data = _signal()
    cfg = TrainConfig(steps=100, batch=256, lr=3e-3, eval_every=10, plateau_tol=0.01)  # still falling fast
    history = train(
        TopKSAE(16, 64, k=4), TensorBatches(data, 256), cfg, heldout=data[:256], show_progress=False
    )
    assert history.flattened is False and history.steps == 100 and history.decay_start == 80
    with pytest.raises(ConfigError, match="eval_every needs held-out activations"):
        train(TopKSAE(16, 64, k=4), TensorBatches(data, 256), cfg, show_progress=False)


def test_relu_claim_is_untested_when_l0_is_not_matched():
    width = {"mse": 10.0, "l0": 32.0}
    assert _relu_claim(width, {"mse": 12.0, "l0": 30.0, "l1_coeff": 1.0}).holds is True
    missed = _relu_claim(width, {"mse": 9.0, "l0": 20.0, "l1_coeff": 1.0})
    assert missed.holds is None and "missed the Switch SAE's (32.0) by over 20%" in missed.detail
