"""Chat clients against a local fake server (OpenAI and Anthropic protocols) and a tiny random local LM."""

from __future__ import annotations

import pickle
import socket

import pytest
from tests.chat_server import FakeServer

from intelligible.core.errors import ConfigError, DataError
from intelligible.lm import (
    AnthropicChat,
    ChatError,
    LocalChat,
    OpenAIChat,
    chat_client,
    price_for,
)

FAST = {"base_delay": 0.001, "max_delay": 0.01, "timeout": 5.0}
HELLO = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}]


@pytest.fixture
def server(monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    fake = FakeServer()
    yield fake
    fake.close()


def openai(server: FakeServer, **kwargs) -> OpenAIChat:
    return OpenAIChat("test-model", base_url=f"{server.url}/v1", **{**FAST, **kwargs})


# ---------------------------------------------------------------------------- OpenAI protocol
def test_openai_reply_tokens_and_request_body(server):
    client = openai(server)
    reply = client.chat(HELLO, max_tokens=50, temperature=0.0)
    assert (reply.text, reply.model) == ("hi there", "test-model")
    assert (reply.input_tokens, reply.output_tokens) == (11, 3)
    assert reply.cached is False and reply.cost_usd is None  # unlisted model: unknown price
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"] == {"model": "test-model", "messages": HELLO, "max_tokens": 50, "temperature": 0.0}
    assert "authorization" not in request["headers"]  # local servers need no key


def test_openai_sends_key_from_env_or_argument(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    openai(server).chat(HELLO)
    openai(server, api_key="sk-arg").chat(HELLO)
    assert [r["headers"]["authorization"] for r in server.requests] == ["Bearer sk-env", "Bearer sk-arg"]


def test_retries_429_with_retry_after_then_500_then_succeeds(server):
    server.script = [(429, {"Retry-After": "0"}, {"error": {"message": "slow down"}})] * 2
    server.script.append((500, {}, {"error": {"message": "boom"}}))
    client = openai(server)
    assert client.chat(HELLO).text == "hi there"
    assert len(server.requests) == 4
    assert client.usage.retries == 3 and client.usage.requests == 1


def test_gives_up_after_max_retries(server):
    server.script = [(503, {}, {"error": {"message": "overloaded"}})] * 3
    client = openai(server, max_retries=2)
    with pytest.raises(ChatError) as caught:
        client.chat(HELLO)
    assert caught.value.status == 503
    assert "overloaded" in str(caught.value) and "3 attempts" in str(caught.value)
    assert len(server.requests) == 3


def test_client_error_is_raised_at_once_in_one_line(server):
    message = {"error": {"message": "bad model\nname", "type": "invalid_request_error"}}
    server.script = [(400, {}, message)]
    with pytest.raises(ChatError) as caught:
        openai(server).chat(HELLO)
    text = str(caught.value)
    assert caught.value.status == 400 and "400" in text and "bad model name" in text and "\n" not in text
    assert len(server.requests) == 1


def test_connection_refused_raises_after_retries():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenAIChat("m", base_url=f"http://127.0.0.1:{port}/v1", api_key_env=None, max_retries=2, **FAST)
    with pytest.raises(ChatError, match="connection error") as caught:
        client.chat(HELLO)
    assert caught.value.status is None and client.usage.retries == 2


def test_empty_reply_is_returned_not_raised(server):
    server.reply_text = ""
    assert openai(server).chat(HELLO).text == ""


def test_cache_hit_skips_server(server, tmp_path):
    client = openai(server, cache_dir=tmp_path, prices=(1.0, 2.0))
    first = client.chat(HELLO, temperature=0.0)
    second = client.chat(HELLO, temperature=0.0)
    assert len(server.requests) == 1 and not first.cached and second.cached
    assert second.text == first.text and second.input_tokens == 11 and second.cost_usd == 0.0
    # A fresh client (a rerun) reads the same files; a different request misses.
    rerun = openai(server, cache_dir=tmp_path)
    assert rerun.chat(HELLO, temperature=0.0).cached
    rerun.chat(HELLO, temperature=0.5)
    assert len(server.requests) == 2
    assert rerun.usage.as_dict()["cached_requests"] == 1 and rerun.usage.requests == 1
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_usage_and_cost_accumulate(server, tmp_path):
    client = openai(server, prices=(2.0, 10.0), cache_dir=tmp_path)
    client.chat(HELLO, temperature=0.0)
    client.chat([{"role": "user", "content": "again"}], temperature=0.0)
    client.chat(HELLO, temperature=0.0)  # cached: counted apart, costs nothing
    usage = client.usage.as_dict()
    assert usage["requests"] == 2 and usage["cached_requests"] == 1
    assert (usage["input_tokens"], usage["output_tokens"]) == (22, 6)
    assert (usage["cached_input_tokens"], usage["cached_output_tokens"]) == (11, 3)
    assert usage["cost_usd"] == pytest.approx((22 * 2.0 + 6 * 10.0) / 1e6)


def test_known_model_prices():
    assert price_for("gpt-4o") == (2.50, 10.00)
    assert price_for("gpt-4o-mini-2024-07-18") == (0.15, 0.60)
    assert price_for("claude-3-opus-20240229") == (15.00, 75.00)
    assert price_for("gpt-4-turbo-2024-04-09") == (10.00, 30.00)
    assert price_for("llama3:8b") is None


def test_bad_messages_and_options_are_clear_errors(server):
    client = openai(server)
    with pytest.raises(DataError, match="role"):
        client.chat([{"role": "robot", "content": "x"}])
    with pytest.raises(DataError, match="non-empty"):
        client.chat([])
    with pytest.raises(ConfigError, match="max_tokens"):
        client.chat(HELLO, max_tokens=0)
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIChat("m", base_url="localhost:8000")
    assert not server.requests


def test_client_pickles_for_process_pools(server):
    client = openai(server)
    client.chat(HELLO)
    clone = pickle.loads(pickle.dumps(client))
    assert clone.chat(HELLO).text == "hi there"


# ---------------------------------------------------------------------------- Anthropic protocol
def test_anthropic_system_field_key_header_and_text_blocks(server):
    client = AnthropicChat("claude-3-5-sonnet-20240620", base_url=server.url, api_key="ak-test", **FAST)
    reply = client.chat(
        HELLO + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "More."}]
    )
    assert reply.text == "hi there" and (reply.input_tokens, reply.output_tokens) == (7, 2)
    assert reply.cost_usd == pytest.approx((7 * 3.0 + 2 * 15.0) / 1e6)
    (request,) = server.requests
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == "ak-test"
    assert request["headers"]["anthropic-version"] == "2023-06-01"
    body = request["body"]
    assert body["system"] == "Be brief."
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["max_tokens"] == 4096


def test_anthropic_key_from_env_and_missing_key(server, monkeypatch):
    with pytest.raises(ConfigError, match="ANTHROPIC_API_KEY"):
        AnthropicChat("claude-3-opus-20240229", base_url=server.url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "ak-env")
    AnthropicChat("claude-3-opus-20240229", base_url=server.url, **FAST).chat(
        [{"role": "user", "content": "x"}]
    )
    assert server.requests[0]["headers"]["x-api-key"] == "ak-env"
    assert "system" not in server.requests[0]["body"]


def test_anthropic_error_message_is_reported(server):
    error = {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens too big"}}
    server.script = [(400, {}, error)]
    client = AnthropicChat("claude-3-opus-20240229", base_url=server.url, api_key="k", **FAST)
    with pytest.raises(ChatError, match="HTTP 400: max_tokens too big"):
        client.chat(HELLO)


# ---------------------------------------------------------------------------- local model
@pytest.fixture(scope="module")
def tiny_chat():
    from conftest import make_llama, make_tokenizer

    return make_llama(n_layers=2), make_tokenizer()


def test_local_chat_is_deterministic_at_temperature_zero(tiny_chat):
    model, tokenizer = tiny_chat
    client = LocalChat.from_pretrained_objects(model, tokenizer, "tiny")
    messages = [{"role": "user", "content": "w1 w2 w3"}]
    first = client.chat(messages, max_tokens=6, temperature=0.0)
    second = client.chat(messages, max_tokens=6, temperature=0.0)
    assert isinstance(first.text, str) and first.text == second.text
    assert first.input_tokens == len(client.prompt_ids(messages)) > 0
    assert 0 < first.output_tokens <= 6 and first.cost_usd == 0.0
    assert client.usage.requests == 2 and client.usage.cost_usd == 0.0


def test_local_chat_sampling_is_seeded_and_uses_chat_template(tiny_chat):
    model, tokenizer = tiny_chat
    messages = [{"role": "user", "content": "w5 w6"}]
    a = LocalChat.from_pretrained_objects(model, tokenizer, "tiny", seed=3).chat(messages, max_tokens=5)
    b = LocalChat.from_pretrained_objects(model, tokenizer, "tiny", seed=3).chat(messages, max_tokens=5)
    assert a.text == b.text

    class Templated:
        """Only what LocalChat relies on: a template, encode, decode, eos_token_id."""

        chat_template = "{% for m in messages %}{{ m.content }} {% endfor %}"
        eos_token_id = tokenizer.eos_token_id

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert tokenize is False and add_generation_prompt is True
            return " ".join(m["content"] for m in messages) + " w9"

        def encode(self, text, add_special_tokens=True):
            return tokenizer.encode(text, add_special_tokens=add_special_tokens)

        def decode(self, ids, skip_special_tokens=True):
            return tokenizer.decode(ids, skip_special_tokens=skip_special_tokens)

    client = LocalChat.from_pretrained_objects(model, Templated(), "tiny")
    assert client.prompt_ids(messages) == tokenizer.encode("w5 w6 w9", add_special_tokens=False)
    assert isinstance(client.chat(messages, max_tokens=3, temperature=0.0).text, str)


# ---------------------------------------------------------------------------- factory
def test_chat_client_factory(server, monkeypatch):
    client = chat_client("openai:llama3:8b", base_url=f"{server.url}/v1", **FAST)
    assert isinstance(client, OpenAIChat) and client.model == "llama3:8b"
    assert client.chat(HELLO).text == "hi there"
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    assert isinstance(chat_client("anthropic:claude-3-opus-20240229"), AnthropicChat)
    local = chat_client("local:smollm2")  # loads nothing until the first request
    assert isinstance(local, LocalChat) and local.model == "smollm2"


def test_chat_client_factory_errors():
    with pytest.raises(ConfigError, match="openai, anthropic, local"):
        chat_client("gemini:pro")
    with pytest.raises(ConfigError, match="backend:model"):
        chat_client("gpt-4o")
    with pytest.raises(ConfigError, match="base_url"):
        chat_client("local:smollm2", base_url="http://x")
