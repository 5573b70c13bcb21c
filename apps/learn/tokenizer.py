"""The tokenizer lesson: a text split into its tokens, and what that many tokens cost.

Reads only (no rows written). The counting is the same tiktoken encoding the chat and the
billing hold use (apps.providers.tokens), so the page shows the numbers the site bills by.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TypedDict

from django.utils import timezone

from apps.billing.models import ExchangeRate
from apps.billing.selectors import exchange_rate_at
from apps.providers.models import ChatModel
from apps.providers.selectors import model_price_at
from apps.providers.tokens import encoding_for_model, encoding_get

# The page counts what a student pastes, not a book: beyond this the endpoint says 400.
TEXT_MAX_CHARS = 20_000
CURRENCIES = ("CNY", "USD")
_MONEY_PLACES = Decimal("0.00000001")
_MILLION = Decimal(1_000_000)


class TokenPiece(TypedDict, total=False):
    id: int
    # The token's bytes as text. A token that ends or starts inside a multi-byte character
    # (a Chinese character or an emoji split over two tokens) cannot be shown as text on its
    # own: its whole characters are shown, and each stray byte as \xNN.
    text: str
    # Only on such tokens: True, and the characters the run of tokens spells together.
    partial: bool
    joined: str


@dataclass(frozen=True)
class TextTokens:
    encoding: str
    exact: bool
    pieces: list[TokenPiece]

    @property
    def count(self) -> int:
        return len(self.pieces)


def _bytes_shown(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")


def text_tokens_split(*, text: str, model_name: str) -> TextTokens:
    """`text` as the token ids tiktoken's encoding for `model_name` gives, each with the text
    it stands for. Runs of tokens that split a character are marked partial, each with the
    characters the run makes together."""
    encoding_name, estimated = encoding_for_model(model_name)
    encoding = encoding_get(encoding_name)
    ids = encoding.encode(text, disallowed_special=())
    pieces: list[TokenPiece] = []
    run: list[tuple[int, bytes]] = []  # tokens whose bytes are not yet whole characters

    def run_close() -> None:
        joined = b"".join(raw for _id, raw in run).decode("utf-8", errors="backslashreplace")
        for token_id, raw in run:
            pieces.append({"id": token_id, "text": _bytes_shown(raw), "partial": True, "joined": joined})
        run.clear()

    for token_id in ids:
        raw = encoding.decode_single_token_bytes(token_id)
        if not run:
            try:
                pieces.append({"id": token_id, "text": raw.decode("utf-8")})
                continue
            except UnicodeDecodeError:
                pass
        run.append((token_id, raw))
        try:
            b"".join(r for _id, r in run).decode("utf-8")
        except UnicodeDecodeError:
            continue
        run_close()
    if run:  # only on text that was not valid UTF-8 to begin with; kept for safety
        run_close()
    return TextTokens(encoding=encoding_name, exact=not estimated, pieces=pieces)


@dataclass(frozen=True)
class TokenCost:
    """What `tokens` tokens cost at a model's price, in its own currency and converted."""

    currency: str
    input_per_million: Decimal
    output_per_million: Decimal
    effective_from: datetime
    # currency -> (as input, as output); a currency without an exchange rate is missing.
    by_currency: dict[str, tuple[Decimal, Decimal]]


def money_text(value: Decimal) -> str:
    """A Decimal as a plain string (no exponent, no trailing zeros): '0.00012'."""
    text = f"{value.quantize(_MONEY_PLACES):f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def token_cost(*, model: ChatModel, tokens: int, when: datetime | None = None) -> TokenCost | None:
    """The price of `tokens` input or output tokens of `model` now; None when it has no price."""
    when = when or timezone.now()
    price = model_price_at(model_id=model.pk, when=when)
    if price is None:
        return None
    count = Decimal(tokens)
    own = (count * price.input_per_million / _MILLION, count * price.output_per_million / _MILLION)
    by_currency: dict[str, tuple[Decimal, Decimal]] = {}
    for currency in CURRENCIES:
        try:
            rate = exchange_rate_at(from_currency=price.currency, to_currency=currency, when=when)
        except ExchangeRate.DoesNotExist:
            continue
        by_currency[currency] = (own[0] * rate, own[1] * rate)
    by_currency[price.currency] = own
    return TokenCost(
        currency=price.currency,
        input_per_million=price.input_per_million,
        output_per_million=price.output_per_million,
        effective_from=price.effective_from,
        by_currency=by_currency,
    )
