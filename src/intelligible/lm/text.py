"""Text sources and tokenisation into fixed-length windows that start with BOS."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import Tensor

from intelligible.core.config import shown
from intelligible.core.errors import DataError, MissingDependencyError

BUILTIN_CORPUS = "pydoc"
# About 11 MB of English (over 2M SmolLM2 tokens): the reStructuredText sources of the whole Python
# documentation, from Debian's python3-doc package (PSF license); `make setup` installs it as root.
PYTHON_DOCS = "python-docs"
PYTHON_DOCS_GLOB = "/usr/share/doc/python3*/html/_sources"
TEXT_SUFFIXES = (".txt", ".md", ".rst", ".text")


def builtin_corpus() -> str:
    """About 460 KB of English prose: the Python docs topics that ship with every CPython."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key].strip() for key in sorted(topics))


def python_docs_folder(pattern: str = PYTHON_DOCS_GLOB) -> Path:
    """The newest installed Python documentation sources (Debian/Ubuntu python3-doc), or a DataError."""
    import glob

    found = sorted(glob.glob(pattern), key=_version_key)
    if not found:
        raise DataError(
            f"the '{PYTHON_DOCS}' corpus needs the Python documentation sources ({pattern}): install "
            "them with `sudo apt-get install python3-doc` (`make setup` does, as root), or give a folder "
            "of .txt/.rst/.md files"
        )
    return Path(found[-1])


def _version_key(path: str) -> tuple[int, ...]:
    # python3.9 < python3.11: compare the numbers, not the text
    digits = [part for part in path.split("/python3")[-1].split("/")[0].split(".") if part.isdigit()]
    return tuple(int(part) for part in digits)


def read_text_file(path: str | os.PathLike) -> str:
    """Read a UTF-8 text file; binary, undecodable or unreadable files raise DataError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise DataError(f"{shown(str(path))} is a folder, not a text file") from None
    except OSError as error:
        raise DataError(f"cannot read {shown(str(path))}: {error.strerror or error}") from None
    if b"\x00" in data[:65536]:
        raise DataError(f"{shown(str(path))} is not a text file (it contains NUL bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{shown(str(path))} is not UTF-8 text (byte {exc.start} cannot be decoded)") from exc


# A folder walk that meets more entries than this was almost surely not meant (`--text /`, a home folder).
MAX_FOLDER_ENTRIES = 100_000


def load_text(source: str | os.PathLike = BUILTIN_CORPUS) -> str:
    """Text from "pydoc" (the built-in corpus), "python-docs" (the whole Python documentation, when
    installed), a text file, or a folder of .txt/.md/.rst files.

    Every failure is a DataError that names the source: an empty name, a path that does not exist,
    something that is neither a file nor a folder, an unreadable file or subfolder, a folder with
    no text files or with more than MAX_FOLDER_ENTRIES entries, binary or empty text.
    """
    raw = str(source)
    if raw == BUILTIN_CORPUS:
        return builtin_corpus()
    if raw == PYTHON_DOCS:
        return _read_folder(python_docs_folder(), raw)
    if not raw.strip():
        raise DataError(
            f"the text source is an empty name; give '{BUILTIN_CORPUS}' (the built-in corpus), a text file or a folder"
        )
    location = os.path.expanduser(raw)  # a string, so a trailing slash still means "a folder"
    try:
        mode = os.stat(location).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise DataError(
            f"text source {shown(raw)}: no such file or folder (give '{BUILTIN_CORPUS}', a text file or a folder)"
        ) from None
    except OSError as error:
        raise DataError(f"cannot read text source {shown(raw)}: {error.strerror or error}") from None
    if stat.S_ISDIR(mode):
        text = _read_folder(Path(location), raw)
    elif stat.S_ISREG(mode):
        text = read_text_file(location)
    else:
        raise DataError(
            f"text source {shown(raw)} is neither a regular file nor a folder (a device, pipe or socket?)"
        )
    if not text.strip():
        raise DataError(f"text source {shown(raw)} is empty")
    return text


def _read_folder(folder: Path, raw: str) -> str:
    """The text files under `folder` (sorted paths), refusing unreadable subfolders and huge trees."""
    errors: list[OSError] = []
    files, seen = [], 0
    for root, dirs, names in os.walk(folder, onerror=errors.append):
        if errors:
            break
        seen += len(dirs) + len(names)
        if seen > MAX_FOLDER_ENTRIES:
            raise DataError(
                f"text folder {shown(raw)} holds more than {MAX_FOLDER_ENTRIES:,} files and folders; "
                "give a smaller folder or one text file"
            )
        for name in names:
            if Path(name).suffix.lower() in TEXT_SUFFIXES:
                path = Path(root) / name
                try:
                    regular = stat.S_ISREG(path.stat().st_mode)
                except OSError:
                    regular = False  # a dangling link: nothing to read
                if regular:
                    files.append(path)
    if errors:
        error = errors[0]
        where = shown(str(error.filename)) if error.filename else "a subfolder"
        raise DataError(f"cannot read {where} inside text folder {shown(raw)}: {error.strerror or error}")
    if not files:
        raise DataError(f"folder {shown(raw)} holds no text files ({', '.join(TEXT_SUFFIXES)})")
    return "\n\n".join(read_text_file(path) for path in sorted(files))


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


def check_text_length(text: str, tokens: int, source: str | os.PathLike = "the text") -> None:
    """Refuse, before any tokenizer loads, a text that cannot hold `tokens` tokens: every token of a
    byte-level, word-level or SentencePiece tokenizer covers at least one byte of the text."""
    size = len(text.encode("utf-8"))
    if tokens > size + 1:
        raise DataError(
            f"text too short: {shown(str(source))} has {size:,} bytes, fewer than the {tokens:,} tokens needed "
            "(give more text or lower --n-tokens/--n-windows/--seq-len)"
        )


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
