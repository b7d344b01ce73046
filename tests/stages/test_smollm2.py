"""The bundled SmolLM2-135M: exactness against transformers, and the quick reproduction's claims."""

from __future__ import annotations

import json

import pytest
import torch

from intelligible.lm import builtin_corpus, token_windows
from intelligible.stages import make_interventions, run_sweep
from intelligible.stages.experiment import preset_config, run_experiment

pytestmark = pytest.mark.slow(seconds=30)


def test_smollm2_shape_and_exact_forward(smollm2):
    assert (smollm2.n_layers, smollm2.d_model, smollm2.vocab_size) == (30, 576, 49152)
    ids = smollm2.to_tokens("The capital of France is Paris. The capital of Italy is")
    with torch.no_grad():
        reference = smollm2.hf_model(ids, use_cache=False).logits
    ours = smollm2(ids)
    torch.testing.assert_close(ours, reference, atol=1e-4, rtol=0)
    lens = smollm2.logit_lens(smollm2.residual_stream(ids)[-1])
    torch.testing.assert_close(lens, reference, atol=1e-4, rtol=0)
    assert smollm2.tokenizer.decode(ours[0, -1].argmax()).strip() == "Rome"


def test_smollm2_prefix_reuse_equals_naive(smollm2):
    windows = token_windows(
        smollm2.tokenizer, builtin_corpus(), seq_len=64, n_windows=2, bos_token_id=smollm2.bos_token_id
    )
    edits = make_interventions(30, layers=[0, 14, 28])
    fast = run_sweep(smollm2, windows, edits, show_progress=False)
    naive = run_sweep(smollm2, windows, edits, reuse_prefix=False, show_progress=False)
    for a, b in zip(fast.rows, naive.rows):
        for key in ("accuracy", "kl", "loss", "entropy"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), (a["name"], key)
    delete = {r["layer"]: r["retained_accuracy"] for r in fast.of_kind("delete")}
    assert delete[0] < 0.3 < delete[14]


@pytest.mark.slow(seconds=260)
def test_quick_reproduction_claims_hold(smollm2, tmp_path):
    report = run_experiment(preset_config("quick"), tmp_path, preset="quick", model=smollm2)
    failed = [c.statement for c in report.claims if not c.holds]
    assert not failed, failed
    middle = report.claims[0].measured_value
    assert 0.72 <= middle <= 0.95
    stages = json.loads((tmp_path / "stages.json").read_text())
    assert stages["labels"][0] == 0 and stages["labels"][-1] == 3
    assert (tmp_path / "figures" / "overview.png").exists()
