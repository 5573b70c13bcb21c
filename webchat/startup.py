"""Refusing to serve with a configuration that is unsafe or broken."""

from __future__ import annotations

import sys

from django.conf import settings


def refuse_to_start_if_misconfigured() -> None:
    """One line on stderr and exit code 1, no traceback: whoever reads it needs the fix,
    not a stack."""
    if settings.STARTUP_PROBLEMS:
        sys.stderr.write(f"webchat refuses to start: {settings.STARTUP_PROBLEMS[0]}\n")
        raise SystemExit(1)
