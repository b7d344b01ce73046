"""The de-quantised GGUF cache: converted once, read back identically, rebuilt when damaged or stale."""

from __future__ import annotations

import os

import pytest
import torch
from tests.conftest import make_llama, make_tokenizer

from intelligible.lm import load_model, loading


@pytest.fixture
def fake_gguf(tmp_path, monkeypatch):
    """A .gguf path whose 'conversion' builds a tiny Llama (the real converter is only slow, not the point)."""
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF stand-in")
    conversions = []
    real = loading._from_pretrained

    def from_pretrained(location, gguf_file, dtype, device):
        if gguf_file is None:
            return real(location, gguf_file, dtype, device)
        conversions.append(gguf_file)
        return make_llama(seed=len(conversions)).to(dtype), make_tokenizer()

    monkeypatch.setattr(loading, "_from_pretrained", from_pretrained)
    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path / "cache"))
    return path, conversions


def _logits(lm):
    ids = lm.to_tokens("w1 w2 w3 w4")
    with torch.no_grad():
        return lm.hf_model(ids, use_cache=False).logits


def test_converted_once_then_read_back_identically(fake_gguf):
    path, conversions = fake_gguf
    first = load_model(path)
    folder = loading.gguf_cache_dir(path, torch.float32)
    assert conversions == ["tiny.gguf"] and (folder / "complete").is_file()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temporary folder left
    second = load_model(path)
    assert conversions == ["tiny.gguf"]
    torch.testing.assert_close(_logits(second), _logits(first), rtol=0, atol=0)
    assert second.tokenizer("w5 w6").input_ids == first.tokenizer("w5 w6").input_ids


def test_a_damaged_copy_is_rebuilt(fake_gguf):
    path, conversions = fake_gguf
    load_model(path)
    folder = loading.gguf_cache_dir(path, torch.float32)
    (folder / "config.json").write_text("{ not json")
    load_model(path)
    assert len(conversions) == 2 and (folder / "complete").is_file()
    load_model(path)
    assert len(conversions) == 2


def test_a_changed_file_or_dtype_gets_its_own_copy(fake_gguf):
    path, conversions = fake_gguf
    load_model(path)
    before = loading.gguf_cache_dir(path, torch.float32)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert loading.gguf_cache_dir(path, torch.float32) != before
    load_model(path)
    assert len(conversions) == 2
    assert loading.gguf_cache_dir(path, torch.float64) != loading.gguf_cache_dir(path, torch.float32)


def test_cache_off_or_unwritable_still_loads(fake_gguf, tmp_path, monkeypatch):
    path, conversions = fake_gguf
    monkeypatch.setenv(loading.CACHE_ENV, "off")
    assert loading.cache_root() is None
    load_model(path)
    load_model(path)
    assert len(conversions) == 2 and not (tmp_path / "cache").exists()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(loading.CACHE_ENV, str(blocker / "cache"))  # cannot be created
    lm = load_model(path)
    assert len(conversions) == 3 and lm.n_layers == 4


@pytest.mark.slow(seconds=50)
def test_bundled_model_from_the_cache_equals_a_fresh_conversion(smollm2, tmp_path, monkeypatch):
    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path / "cache"))
    converted = load_model("smollm2-135m")  # converts (about 40 s) and keeps the copy
    cached = load_model("smollm2-135m")  # reads the copy
    assert (
        loading.gguf_cache_dir(loading.bundled_model_file("smollm2-135m"), torch.float32) / "complete"
    ).is_file()
    text = "The capital of France is Paris. def square(x): return x ** 2"
    for lm in (converted, cached):
        assert lm.tokenizer(text).input_ids == smollm2.tokenizer(text).input_ids
        assert lm.tokenizer.chat_template == smollm2.tokenizer.chat_template
        torch.testing.assert_close(_logits(lm), _logits(smollm2), rtol=0, atol=0)
