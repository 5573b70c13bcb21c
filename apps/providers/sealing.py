"""Sealing API keys at rest: AES-256-GCM under a master key from KEY_ENCRYPTION_KEYS.

Blob layout: version (1 byte) | master key id (8 bytes) | nonce (12 bytes) | ciphertext+tag.
The associated data binds a blob to the row it was made for (see Credential): the same
bytes in another row, or under a changed base URL, fail authentication instead of opening.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

VERSION = b"\x01"
KEK_ID_BYTES = 8
NONCE_BYTES = 12


class SealError(Exception):
    """A sealed key cannot be opened: wrong or missing master key, or tampered/moved bytes."""


@dataclass(frozen=True)
class MasterKey:
    kek_id: str  # hex; identifies the key without revealing it
    aead: AESGCM


def _parse_master_key(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            "KEY_ENCRYPTION_KEYS must hold base64 keys of 32 bytes; make one with: "
            'python -c "import base64,os; print(base64.urlsafe_b64encode(os.urandom(32)).decode())"'
        )
    return raw


def _kek_id(raw: bytes) -> str:
    return hashlib.sha256(b"webchat-kek-id:" + raw).hexdigest()[: KEK_ID_BYTES * 2]


@cache
def _master_keys(configured: tuple[str, ...], fallback_secret: str) -> tuple[MasterKey, ...]:
    raws = [_parse_master_key(text) for text in configured]
    if not raws:
        # Development only (settings refuse to start without keys when DEBUG is off): a key
        # derived from SECRET_KEY, so `make run` needs no set-up.
        raws = [hashlib.sha256(b"webchat-dev-kek:" + fallback_secret.encode()).digest()]
    return tuple(MasterKey(kek_id=_kek_id(raw), aead=AESGCM(raw)) for raw in raws)


def master_keys() -> tuple[MasterKey, ...]:
    """Every configured master key; the first one seals."""
    return _master_keys(tuple(settings.KEY_ENCRYPTION_KEYS), settings.SECRET_KEY)


def current_kek_id() -> str:
    return master_keys()[0].kek_id


def seal(plaintext: bytes, *, binding: bytes) -> tuple[bytes, str]:
    """Seal under the first master key. Returns (blob, master key id)."""
    key = master_keys()[0]
    nonce = os.urandom(NONCE_BYTES)
    blob = VERSION + bytes.fromhex(key.kek_id) + nonce + key.aead.encrypt(nonce, plaintext, binding)
    return blob, key.kek_id


def unseal(blob: bytes, *, binding: bytes) -> bytes:
    blob = bytes(blob)
    if len(blob) < 1 + KEK_ID_BYTES + NONCE_BYTES + 16 or blob[:1] != VERSION:
        raise SealError("not a sealed key")
    kek_id = blob[1 : 1 + KEK_ID_BYTES].hex()
    nonce = blob[1 + KEK_ID_BYTES : 1 + KEK_ID_BYTES + NONCE_BYTES]
    key = next((k for k in master_keys() if k.kek_id == kek_id), None)
    if key is None:
        raise SealError(f"sealed with master key {kek_id}, which is not in KEY_ENCRYPTION_KEYS")
    try:
        return key.aead.decrypt(nonce, blob[1 + KEK_ID_BYTES + NONCE_BYTES :], binding)
    except InvalidTag:
        raise SealError("the sealed key does not open for this row (moved, altered, or a wrong master key)") from None
