"""Language models: loading (bundled SmolLM2, HF ids, folders, .gguf), residual access, layer editing, text,
chat clients (OpenAI-compatible HTTP, Anthropic, local)."""

from intelligible.lm.chat import (
    PRICES,
    AnthropicChat,
    ChatClient,
    ChatError,
    ChatReply,
    ChatUsage,
    LocalChat,
    Message,
    OpenAIChat,
    chat_client,
    price_for,
)
from intelligible.lm.loading import BUNDLED_MODELS, bundled_model_file, known_models, load_model
from intelligible.lm.model import SUPPORTED_ARCHITECTURES, LanguageModel, delete_layer, swap_layers
from intelligible.lm.text import (
    BUILTIN_CORPUS,
    builtin_corpus,
    iter_batches,
    load_text,
    read_text_file,
    stream_hf_dataset,
    token_windows,
)

__all__ = [
    "BUILTIN_CORPUS",
    "BUNDLED_MODELS",
    "PRICES",
    "SUPPORTED_ARCHITECTURES",
    "AnthropicChat",
    "ChatClient",
    "ChatError",
    "ChatReply",
    "ChatUsage",
    "LanguageModel",
    "LocalChat",
    "Message",
    "OpenAIChat",
    "builtin_corpus",
    "bundled_model_file",
    "chat_client",
    "delete_layer",
    "iter_batches",
    "known_models",
    "load_model",
    "load_text",
    "price_for",
    "read_text_file",
    "stream_hf_dataset",
    "swap_layers",
    "token_windows",
]
