"""Writes for the provider catalog."""
from __future__ import annotations

from .catalog import DEMO, catalog_apply
from .models import ChatModel, ModelPrice, Provider


def catalog_demo_ensure() -> int:
    """Make sure the built-in demo provider and its model exist (an admin may have deleted
    them). Side effects: creates missing rows only. Returns how many were created."""
    return catalog_apply(entries=[DEMO], provider_model=Provider, chat_model_model=ChatModel, price_model=ModelPrice)
