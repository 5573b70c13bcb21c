"""Billing: quotas, holds, the ledger and rollups arrive with the billing issue."""
from __future__ import annotations
