"""Text sources and tokenisation into fixed-length windows that start with BOS."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from intelligible.core.errors import DataError, MissingDependencyError

BUILTIN_CORPUS = "pydoc"
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")


def builtin_corpus() -> str:
    """About 460 KB of English prose: the Python docs topics that ship with every CPython."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip() for key in sorted(topics))


def read_text_file(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; binary or undecodable files raise DataError."""
    path = Path(path)
    data = path.read_bytes()
    if b"\x00" in data[:65536]:
        raise DataError(f"'{path}' is not a text file (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"'{path}' is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc


def load_text(source: str | os.PathLike = BUILTIN_CORPUS) -> str:
    """Text from "pydoc" (the built-in corpus), a text file, or a folder of .txt/.md/.rst files."""
    if str(source) == BUILTIN_CORPUS:
        return builtin_corpus()
    path = Path(source).expanduser()
    if path.is_file():
        text = read_text_file(path)
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in TEXT_SUFFIXES)
        if not files:
            raise DataError(f"folder '{path}' holds no text files ({', '.join(TEXT_SUFFIXES)})")
        text = "\n\n".join(read_text_file(p) for p in files)
    else:
        raise DataError(
            f"text source '{source}' is neither '{BUILTIN_CORPUS}' nor an existing file or folder"
        )
    if not text.strip():
        raise DataError(f"text source '{source}' is empty")
    return text


def stream_hf_dataset(
    name: str,
    *,
    split: str = "train",
    text_field: str = "text",
    max_chars: int = 2_000_000,
    config: str | None = None,
) -> str:
    """Concatenate up to `max_chars` of text streamed from a Hugging Face dataset (needs `datasets` and the hub)."""
    try:
        import datasets
    except ImportError as exc:
        raise MissingDependencyError("streaming a Hugging Face dataset needs `pip install datasets`") from exc
    try:
        stream = datasets.load_dataset(name, config, split=split, streaming=True)
        pieces: list[str] = []
        total = 0
        for row in stream:
            if text_field not in row:
                raise DataError(f"dataset '{name}' has no field '{text_field}'; fields: {', '.join(row)}")
            pieces.append(str(row[text_field]))
            total += len(pieces[-1])
            if total >= max_chars:
                break
    except DataError:
        raise
    except Exception as exc:  # the hub raises many types; all mean "not reachable or not found" here
        raise DataError(
            f"could not stream dataset '{name}': {str(exc).splitlines()[0] if str(exc) else exc!r}"
        ) from exc
    text = "\n\n".join(pieces)
    if not text.strip():
        raise DataError(f"dataset '{name}' gave no text")
    return text


def token_windows(
    tokenizer: object,
    text: str,
    *,
    seq_len: int,
    n_windows: int | None = None,
    bos_token_id: int,
) -> Tensor:
    """Tokenise `text` into (n_windows, seq_len) windows, each BOS followed by seq_len - 1 text tokens.

    Windows are consecutive, non-overlapping chunks; when fewer are asked for than the text holds,
    they are spread evenly over the text so that a sample covers all of it.
    """
    if seq_len < 2:
        raise DataError(f"seq_len must be at least 2 (BOS plus one token), got {seq_len}")
    if n_windows is not None and n_windows < 1:
        raise DataError(f"n_windows must be at least 1, got {n_windows}")
    if not text or not text.strip():
        raise DataError("the text is empty")
    ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
    body = seq_len - 1
    available = len(ids) // body
    needed = n_windows or 1
    if available < needed:
        raise DataError(
            f"text too short: {len(ids)} tokens make {available} window(s) of {seq_len} tokens, "
            f"but {needed} are needed (give more text or lower --n-tokens/--seq-len)"
        )
    count = n_windows or available
    starts = (
        torch.linspace(0, available - 1, count).round().long().tolist() if count < available else range(count)
    )
    chunks = torch.tensor(ids[: available * body], dtype=torch.long).view(available, body)[list(starts)]
    bos = torch.full((count, 1), bos_token_id, dtype=torch.long)
    return torch.cat([bos, chunks], dim=1)


def iter_batches(windows: Tensor, batch_size: int) -> Iterator[Tensor]:
    for start in range(0, windows.shape[0], batch_size):
        yield windows[start : start + batch_size]
