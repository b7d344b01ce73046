"""Chat-model clients behind one small interface: send a conversation, get a `ChatReply`.

Backends:

- `OpenAIChat`: the OpenAI chat-completions protocol, which OpenAI, vLLM, the llama.cpp server,
  Ollama and sglang all speak (point `base_url` at a local server; no key needed there).
- `AnthropicChat`: the Anthropic messages API.
- `LocalChat`: a transformers causal LM in this process (the bundled SmolLM2, any HF id or folder).

Every client counts what it spent in `client.usage` (requests, tokens, dollars, retries), can keep
replies in a disk cache so a rerun costs nothing, and retries rate limits, server errors and
dropped connections with exponential backoff. `chat_client("openai:gpt-4o")` builds one from a spec.
"""

from __future__ import annotations

import email.utils
import hashlib
import inspect
import json
import os
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import torch

from intelligible.core.errors import ConfigError, DataError, IntelligibleError
from intelligible.core.runs import atomic_write_text, ensure_writable_dir

Message = dict  # {"role": "system" | "user" | "assistant", "content": str}
ROLES = ("system", "user", "assistant")

# Public list prices in USD per million (input, output) tokens. A dated model id ("gpt-4o-2024-08-06",
# "claude-3-opus-20240229") takes the price of its longest listed prefix; an unlisted model costs None.
PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4-turbo": (10.00, 30.00),
    "gpt-4-1106-preview": (10.00, 30.00),
    "gpt-4-0125-preview": (10.00, 30.00),
    "gpt-4": (30.00, 60.00),
    "gpt-4-32k": (60.00, 120.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "claude-3-opus": (15.00, 75.00),
    "claude-3-sonnet": (3.00, 15.00),
    "claude-3-haiku": (0.25, 1.25),
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
}

# A server asking us to wait longer than this is treated as asking for this long, so a bad header
# cannot stall a benchmark for hours.
_MAX_RETRY_AFTER_S = 600.0


class ChatError(IntelligibleError, RuntimeError):
    """A chat server refused or failed a request; `status` is the HTTP status (None: no response)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(_one_line(message))
        self.status = status


@dataclass
class ChatReply:
    """One reply. `cost_usd` is what this call cost (None: unknown price; 0.0 for a cache hit)."""

    text: str
    model: str
    input_tokens: int
    output_tokens: int
    cost_usd: float | None
    cached: bool
    latency_s: float


@dataclass
class ChatUsage:
    """What one client spent. `requests` are calls the backend answered; cache hits count only in
    `cached_requests` and `cached_*_tokens`, never in the tokens or dollars of this run.
    `cost_usd` is None once any reply had an unknown price."""

    requests: int = 0
    cached_requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0
    retries: int = 0
    cached_input_tokens: int = 0
    cached_output_tokens: int = 0

    def record(self, reply: ChatReply) -> None:
        if reply.cached:
            self.cached_requests += 1
            self.cached_input_tokens += reply.input_tokens
            self.cached_output_tokens += reply.output_tokens
            return
        self.requests += 1
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        if self.cost_usd is None or reply.cost_usd is None:
            self.cost_usd = None
        else:
            self.cost_usd += reply.cost_usd

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def price_for(model: str) -> tuple[float, float] | None:
    """USD per million (input, output) tokens for `model` from `PRICES`, or None if unlisted."""
    name = model.lower()
    matches = [key for key in PRICES if name == key or name.startswith(key + "-")]
    return PRICES[max(matches, key=len)] if matches else None


def _cost(prices: tuple[float, float] | None, input_tokens: int, output_tokens: int) -> float | None:
    if prices is None:
        return None
    return (input_tokens * prices[0] + output_tokens * prices[1]) / 1e6


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _check_messages(messages: list[dict]) -> list[dict]:
    if not isinstance(messages, list) or not messages:
        raise DataError("messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    clean = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise DataError(f"message {i} needs a 'role' of {', '.join(ROLES)}; got {message!r:.80}")
        if not isinstance(message.get("content"), str):
            raise DataError(
                f"message {i} needs a string 'content'; got {type(message.get('content')).__name__}"
            )
        # Only role and content travel: extra keys would change the cache key and confuse servers.
        clean.append({"role": message["role"], "content": message["content"]})
    return clean


class ChatClient:
    """Base class: validation, disk cache and usage accounting; backends implement `_complete`."""

    kind = "base"

    def __init__(self, model: str, *, cache_dir: str | os.PathLike | None = None) -> None:
        if not isinstance(model, str) or not model:
            raise ConfigError(f"model must be a non-empty string; got {model!r}")
        self.model = model
        self.cache_dir = ensure_writable_dir(cache_dir) if cache_dir is not None else None
        self.usage = ChatUsage()
        self._lock = threading.Lock()

    # A lock cannot be pickled; process-pool workers get a fresh one (and their own usage).
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str | None:
        return None

    def chat(self, messages: list[dict], *, max_tokens: int = 4096, temperature: float = 0.3) -> ChatReply:
        """Send `messages` and return the reply (from the disk cache when this exact request was made)."""
        messages = _check_messages(messages)
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise ConfigError(f"max_tokens must be a positive integer; got {max_tokens!r}")
        if not isinstance(temperature, (int, float)) or not 0.0 <= temperature <= 2.0:
            raise ConfigError(f"temperature must be a number in [0, 2]; got {temperature!r}")
        key = self.cache_key(messages, max_tokens, float(temperature))
        reply = self._read_cache(key)
        if reply is None:
            reply = self._complete(messages, max_tokens, float(temperature))
            self._write_cache(key, reply)
        with self._lock:
            self.usage.record(reply)
        return reply

    def _complete(self, messages: list[dict], max_tokens: int, temperature: float) -> ChatReply:
        raise NotImplementedError

    # ------------------------------------------------------------------ cache
    def cache_key(self, messages: list[dict], max_tokens: int, temperature: float) -> str:
        """sha256 of the canonical JSON of everything that determines the reply."""
        request = {
            "backend": self.kind,
            "base_url": self.base_url,
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def _cache_path(self, key: str) -> Path:
        assert self.cache_dir is not None
        return self.cache_dir / f"{key}.json"

    def _read_cache(self, key: str) -> ChatReply | None:
        if self.cache_dir is None:
            return None
        path = self._cache_path(key)
        try:
            stored = json.loads(path.read_text(encoding="utf-8"))
            return ChatReply(
                text=stored["text"],
                model=stored["model"],
                input_tokens=int(stored["input_tokens"]),
                output_tokens=int(stored["output_tokens"]),
                cost_usd=0.0,  # nothing was spent on this call
                cached=True,
                latency_s=0.0,
            )
        except (OSError, ValueError, KeyError, TypeError):
            # Missing or unreadable (say, from an older format): ask the backend and overwrite it.
            return None

    def _write_cache(self, key: str, reply: ChatReply) -> None:
        if self.cache_dir is None:
            return
        stored = asdict(reply)
        stored.pop("cached")
        stored["backend"] = self.kind
        atomic_write_text(self._cache_path(key), json.dumps(stored, ensure_ascii=False, indent=1))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


_DEFAULT_ENV = object()  # "use the class's key variable"; None means "read no variable"


class _HTTPChat(ChatClient):
    """Shared HTTP plumbing: one connection pool, retries with exponential backoff."""

    # Rate limits, request timeouts and server faults pass with time; other client errors will not.
    RETRY_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

    DEFAULT_BASE_URL = ""
    DEFAULT_KEY_ENV: str | None = None
    KEY_REQUIRED = False  # a hosted API that refuses every request without a key

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        api_key_env: str | None = _DEFAULT_ENV,  # type: ignore[assignment]
        *,
        prices: tuple[float, float] | None = None,
        cache_dir: str | os.PathLike | None = None,
        max_retries: int = 5,
        base_delay: float = 1.0,
        max_delay: float = 60.0,
        timeout: float = 300.0,
    ) -> None:
        base_url = self.DEFAULT_BASE_URL if base_url is None else base_url
        super().__init__(model, cache_dir=cache_dir)
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://; got {base_url!r}")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigError(f"max_retries must be a non-negative integer; got {max_retries!r}")
        if base_delay < 0 or max_delay < 0 or timeout <= 0:
            raise ConfigError("base_delay and max_delay must be >= 0 and timeout > 0")
        self._base_url = base_url.rstrip("/")
        self.prices = tuple(prices) if prices is not None else price_for(model)
        if self.prices is not None and (len(self.prices) != 2 or min(self.prices) < 0):
            raise ConfigError(f"prices must be (input, output) USD per million tokens; got {prices!r}")
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.timeout = timeout
        self._http: httpx.Client | None = None
        if api_key_env is _DEFAULT_ENV:
            api_key_env = self.DEFAULT_KEY_ENV
        self._api_key = _api_key(api_key, api_key_env)
        # Checked here rather than at the first request, so a long benchmark fails before it starts.
        if self.KEY_REQUIRED and not self._api_key:
            raise ConfigError(
                f"no {self.kind} API key: set the environment variable {api_key_env} or pass api_key"
            )

    @property
    def base_url(self) -> str:
        return self._base_url

    def _reply(self, answer: dict, text: str, usage_keys: tuple[str, str], latency: float) -> ChatReply:
        """A reply with the token counts read from the answer's `usage` under the protocol's names."""
        usage = answer.get("usage") or {}
        input_tokens = int(usage.get(usage_keys[0]) or 0)
        output_tokens = int(usage.get(usage_keys[1]) or 0)
        return ChatReply(
            text=text,
            model=answer.get("model") or self.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=_cost(self.prices, input_tokens, output_tokens),
            cached=False,
            latency_s=latency,
        )

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_http"] = None
        return state

    def close(self) -> None:
        """Close the connection pool (the client opens a new one if used again)."""
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> _HTTPChat:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _post(self, url: str, headers: dict[str, str], body: dict) -> dict:
        """POST `body` as JSON and return the parsed JSON answer, retrying what may pass."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout)
        attempts = self.max_retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                response = self._http.post(url, headers=headers, json=body)
            except httpx.TransportError as error:  # refused, reset, DNS, timeouts
                status = None
                problem = f"connection error ({type(error).__name__}: {error})"
            else:
                if response.is_success:
                    try:
                        return response.json()
                    except ValueError as error:
                        raise ChatError(
                            f"{self.kind} server at {url} answered HTTP {response.status_code} "
                            f"with a body that is not JSON: {response.text[:200]}",
                            response.status_code,
                        ) from error
                status = response.status_code
                problem = f"HTTP {status}: {_error_message(response)}"
                if status not in self.RETRY_STATUSES:
                    raise ChatError(f"{self.kind} request for model '{self.model}' failed: {problem}", status)
                retry_after = _retry_after_seconds(response.headers.get("retry-after"))
            if attempt == attempts - 1:
                break
            delay = (
                retry_after if retry_after is not None else min(self.max_delay, self.base_delay * 2**attempt)
            )
            with self._lock:
                self.usage.retries += 1
            time.sleep(delay)
        raise ChatError(
            f"{self.kind} request to {url} for model '{self.model}' failed after {attempts} attempts: {problem}",
            status,
        )


def _error_message(response: httpx.Response) -> str:
    """The server's own explanation: OpenAI/Anthropic {"error": {"message"}}, others vary."""
    try:
        payload = response.json()
    except ValueError:
        return _one_line(response.text[:500]) or response.reason_phrase
    if isinstance(payload, dict):
        error = payload.get("error", payload)
        if isinstance(error, dict):
            error = error.get("message") or error.get("detail") or error
        if isinstance(error, str):
            return _one_line(error[:500])
    return _one_line(json.dumps(payload)[:500])


def _retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: either a number or an HTTP date (RFC 9110)."""
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), _MAX_RETRY_AFTER_S)


def _api_key(api_key: str | None, api_key_env: str | None) -> str | None:
    if api_key:
        return api_key
    return (os.environ.get(api_key_env) or None) if api_key_env else None


class OpenAIChat(_HTTPChat):
    """The OpenAI chat-completions protocol: OpenAI, vLLM, llama.cpp server, Ollama, sglang.

    For a local server give its `base_url` (e.g. "http://localhost:8000/v1"); a key is sent only when
    `api_key` is given or `api_key_env` is set, since local servers need none.
    """

    kind = "openai"
    DEFAULT_BASE_URL = "https://api.openai.com/v1"
    DEFAULT_KEY_ENV = "OPENAI_API_KEY"

    def _complete(self, messages: list[dict], max_tokens: int, temperature: float) -> ChatReply:
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        body = {
            "model": self.model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        url = f"{self.base_url}/chat/completions"
        start = time.perf_counter()
        answer = self._post(url, headers, body)
        latency = time.perf_counter() - start
        try:
            text = answer["choices"][0]["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise ChatError(
                f"openai server at {url} sent no choices[0].message: {str(answer)[:200]}"
            ) from error
        return self._reply(answer, text, ("prompt_tokens", "completion_tokens"), latency)


class AnthropicChat(_HTTPChat):
    """The Anthropic messages API. The key comes from `api_key` or the `api_key_env` variable."""

    kind = "anthropic"
    API_VERSION = "2023-06-01"
    DEFAULT_BASE_URL = "https://api.anthropic.com"
    DEFAULT_KEY_ENV = "ANTHROPIC_API_KEY"
    KEY_REQUIRED = True

    def _complete(self, messages: list[dict], max_tokens: int, temperature: float) -> ChatReply:
        # The messages API takes system prompts as a top-level field, not as a role.
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m for m in messages if m["role"] != "system"],
            "max_tokens": max_tokens,
            "temperature": temperature,
        }
        if system:
            body["system"] = system
        headers = {"x-api-key": self._api_key or "", "anthropic-version": self.API_VERSION}
        url = f"{self.base_url}/v1/messages"
        start = time.perf_counter()
        answer = self._post(url, headers, body)
        latency = time.perf_counter() - start
        blocks = answer.get("content") if isinstance(answer, dict) else None
        if not isinstance(blocks, list):
            raise ChatError(f"anthropic server at {url} sent no content list: {str(answer)[:200]}")
        text = "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
        return self._reply(answer, text, ("input_tokens", "output_tokens"), latency)


class LocalChat(ChatClient):
    """A transformers causal LM in this process; loaded on the first request. Cost is always 0.

    Needs of the tokenizer only `encode`, `decode`, `eos_token_id` and, when it has a `chat_template`,
    `apply_chat_template`; without a template the prompt is a plain "role: content" transcript.
    Sampling (temperature > 0) draws from a generator seeded with `seed`, so runs repeat exactly.
    """

    kind = "local"

    def __init__(
        self,
        model: str = "smollm2",
        device: str = "cpu",
        *,
        seed: int = 0,
        cache_dir: str | os.PathLike | None = None,
    ) -> None:
        super().__init__(str(model), cache_dir=cache_dir)
        self.device = device
        self.seed = seed
        self._hf_model: torch.nn.Module | None = None
        self._tokenizer: Any = None

    @classmethod
    def from_pretrained_objects(
        cls, model: torch.nn.Module, tokenizer: Any, name: str = "local-model", **kwargs: Any
    ) -> LocalChat:
        """A client over an already-loaded HF causal LM and its tokenizer (no loading, no network)."""
        client = cls(name, device=str(next(model.parameters()).device), **kwargs)
        client._hf_model = model.eval()
        client._tokenizer = tokenizer
        return client

    def _load(self) -> None:
        if self._hf_model is None:
            from intelligible.lm.loading import load_model

            wrapped = load_model(self.model, device=self.device)
            self._hf_model, self._tokenizer = wrapped.hf_model, wrapped.tokenizer

    def prompt_ids(self, messages: list[dict]) -> list[int]:
        """Token ids of the conversation, ending where the assistant's reply should start."""
        self._load()
        tokenizer = self._tokenizer
        if getattr(tokenizer, "chat_template", None):
            text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            # Chat templates write their own BOS; adding special tokens again would double it.
            return list(tokenizer.encode(text, add_special_tokens=False))
        transcript = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        return list(tokenizer.encode(transcript))

    def _stop_ids(self) -> set[int]:
        stops: set[int] = set()
        candidates = [getattr(self._tokenizer, "eos_token_id", None)]
        generation_config = getattr(self._hf_model, "generation_config", None)
        candidates.append(getattr(generation_config, "eos_token_id", None))
        for value in candidates:
            if isinstance(value, int):
                stops.add(value)
            elif isinstance(value, (list, tuple)):
                stops.update(int(v) for v in value)
        return stops

    def _complete(self, messages: list[dict], max_tokens: int, temperature: float) -> ChatReply:
        start = time.perf_counter()
        prompt = self.prompt_ids(messages)
        model = self._hf_model
        assert model is not None
        context = getattr(model.config, "max_position_embeddings", None)
        if context is not None:
            if len(prompt) >= context:
                raise DataError(
                    f"prompt has {len(prompt)} tokens; model '{self.model}' reads at most {context}"
                )
            max_tokens = min(max_tokens, context - len(prompt))
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(self.seed)
        stops = self._stop_ids()
        generated: list[int] = []
        step = torch.tensor([prompt], dtype=torch.long, device=device)
        past = None
        # transformers 5 renamed the KV cache argument and output `past_key_values` -> `cache`
        cache_name = "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"
        # A plain loop with a KV cache instead of generate(): every decoding choice is visible here
        # and sampling uses our own generator rather than the global RNG.
        with torch.inference_mode():
            for _ in range(max_tokens):
                out = model(input_ids=step, use_cache=True, **{cache_name: past})
                past = out[cache_name]
                logits = out.logits[0, -1].float()
                if temperature == 0.0:
                    token = int(torch.argmax(logits))
                else:
                    probs = torch.softmax(logits / temperature, dim=-1)
                    token = int(torch.multinomial(probs, 1, generator=generator))
                if token in stops:
                    break
                generated.append(token)
                step = torch.tensor([[token]], dtype=torch.long, device=device)
        text = self._tokenizer.decode(generated, skip_special_tokens=True)
        return ChatReply(
            text=text,
            model=self.model,
            input_tokens=len(prompt),
            output_tokens=len(generated),
            cost_usd=0.0,
            cached=False,
            latency_s=time.perf_counter() - start,
        )


BACKENDS: dict[str, type[ChatClient]] = {"openai": OpenAIChat, "anthropic": AnthropicChat, "local": LocalChat}


def chat_client(spec: str, **kwargs: Any) -> ChatClient:
    """A client from "backend:model", e.g. "openai:gpt-4o", "anthropic:claude-3-opus-20240229",
    "local:smollm2"; keyword arguments go to the backend (e.g. base_url= for a local vLLM/Ollama)."""
    backend, sep, model = str(spec).partition(":")  # models may hold colons themselves ("llama3:8b")
    backend = backend.strip().lower()
    valid = ", ".join(BACKENDS)
    if not sep or not model:
        raise ConfigError(f"chat model '{spec}' must look like 'backend:model' with backend one of {valid}")
    if backend not in BACKENDS:
        raise ConfigError(f"unknown chat backend '{backend}' in '{spec}'; valid backends: {valid}")
    cls = BACKENDS[backend]
    try:
        inspect.signature(cls).bind(model, **kwargs)
    except TypeError as error:
        options = [p for p in inspect.signature(cls).parameters if p != "model"]
        raise ConfigError(
            f"bad options for {backend} chat backend ({error}); valid: {', '.join(options)}"
        ) from None
    return cls(model, **kwargs)


__all__ = [
    "BACKENDS",
    "PRICES",
    "AnthropicChat",
    "ChatClient",
    "ChatError",
    "ChatReply",
    "ChatUsage",
    "LocalChat",
    "Message",
    "OpenAIChat",
    "chat_client",
    "price_for",
]
