"""Shared fixtures: tiny random Llama and GPT-2 models, a word-level tokenizer, the bundled LM (once)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach a hub
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# `make test` sets a wall-clock budget for the whole session: slow tests (the heavy reproductions,
# `@pytest.mark.slow(seconds=N)`) run last, each only when its N seconds still fit, and are skipped
# with the reason otherwise. Plain `pytest` has no budget and runs everything.
TEST_BUDGET_ENV = "INTELLIGIBLE_TEST_BUDGET_S"
_SESSION_START = time.monotonic()
# session fixtures that several slow tests share (`slow(seconds=N, shared="name")`), once they ran
SHARED_RUNS_DONE: set[str] = set()


def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest's hook signature
    items.sort(key=lambda item: item.get_closest_marker("slow") is not None)  # stable: slow ones last


def pytest_runtest_setup(item):
    marker = item.get_closest_marker("slow")
    budget = os.environ.get(TEST_BUDGET_ENV, "").strip()
    if marker is None or not budget:
        return
    expected = float(marker.kwargs.get("seconds", 60))
    if marker.kwargs.get("shared") in SHARED_RUNS_DONE:
        expected = 10.0  # the heavy run it shares was made by an earlier test
    left = float(budget) - (time.monotonic() - _SESSION_START)
    if expected > left:
        pytest.skip(
            f"slow test (about {expected:.0f} s) left out: {max(left, 0):.0f} s of the {float(budget):.0f} s "
            f"budget ({TEST_BUDGET_ENV}) remain; run it with `pytest -m slow`"
        )


WORDS = [f"w{i}" for i in range(90)]
SAMPLE_TEXT = " ".join(WORDS[(7 * i + i // 13) % len(WORDS)] for i in range(3000))


def make_tokenizer():
    """A real `PreTrainedTokenizerFast` over whitespace words (so save/load and AutoTokenizer work offline)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )


VOCAB = len(WORDS) + 3


def make_llama(n_layers: int = 4, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=n_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        initializer_range=0.2,  # large enough that every layer visibly changes the logits
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval()


def make_gpt2(n_layers: int = 4, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=VOCAB,
        n_embd=32,
        n_layer=n_layers,
        n_head=4,
        n_positions=128,
        initializer_range=0.2,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture(params=["llama", "gpt2"])
def tiny_lm(request):
    """A tiny random LanguageModel of each supported architecture family."""
    from intelligible.lm import LanguageModel

    hf = make_llama() if request.param == "llama" else make_gpt2()
    return LanguageModel(hf, make_tokenizer(), name=f"tiny-{request.param}")


@pytest.fixture
def tiny_llama_lm():
    from intelligible.lm import LanguageModel

    return LanguageModel(make_llama(), make_tokenizer(), name="tiny-llama")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A tiny Llama saved as a Hugging Face folder, loadable by `load_model(path)` and the CLI."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    make_llama(n_layers=6).save_pretrained(folder)
    make_tokenizer().save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def sample_text_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("text") / "sample.txt"
    path.write_text(SAMPLE_TEXT, encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def smollm2():
    """The bundled SmolLM2-135M, loaded once per test session (about 20-30 s)."""
    from intelligible.lm import load_model

    return load_model("smollm2-135m")


@pytest.fixture
def windows(tiny_lm):
    from intelligible.lm import token_windows

    return token_windows(
        tiny_lm.tokenizer, SAMPLE_TEXT, seq_len=24, n_windows=6, bos_token_id=tiny_lm.bos_token_id
    )


def train_briefly(hf_model, steps: int = 150, seed: int = 0):
    """A few Adam steps on SAMPLE_TEXT so the tiny model predicts better than chance (retained accuracy is defined)."""
    from intelligible.lm import token_windows

    torch.manual_seed(seed)
    data = token_windows(make_tokenizer(), SAMPLE_TEXT, seq_len=24, n_windows=64, bos_token_id=1)
    optimizer = torch.optim.Adam(hf_model.parameters(), lr=3e-3)
    hf_model.train()
    for _ in range(steps):
        loss = hf_model(data, labels=data, use_cache=False).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return hf_model.eval()


@pytest.fixture(scope="session", params=["llama", "gpt2"])
def trained_lm(request):
    """A tiny model of each family trained for a moment: top-1 accuracy well above zero."""
    from intelligible.lm import LanguageModel

    hf = make_llama() if request.param == "llama" else make_gpt2()
    return LanguageModel(train_briefly(hf), make_tokenizer(), name=f"trained-{request.param}")


@pytest.fixture
def trained_windows(trained_lm):
    from intelligible.lm import token_windows

    return token_windows(trained_lm.tokenizer, SAMPLE_TEXT, seq_len=24, n_windows=6, bos_token_id=1)


@pytest.fixture(autouse=True)
def _seed_every_test():
    """Each test starts from the same global RNG state, whatever ran before it."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def kan_quick_page(tmp_path_factory):
    """`intelligible reproduce --preset quick --only kan`, run once: its reports and report.html.

    Shared by the KAN claims test and the browser test of the page (the run takes about 1.5 min).
    """
    from intelligible.core.registry import run_reproductions

    out = tmp_path_factory.mktemp("reproduce-quick")
    reports, html = run_reproductions("quick", out, only=["kan"], log=lambda line: None)
    SHARED_RUNS_DONE.add("kan_quick_page")
    return reports, html
