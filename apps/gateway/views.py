"""The gateway's pages: personal API keys and "Use the API". Thin: services and selectors
do the work."""

from __future__ import annotations
