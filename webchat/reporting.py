"""Error reports that never carry a secret, DEBUG or not.

Django's SafeExceptionReporterFilter hides what views mark with sensitive_post_parameters
and sensitive_variables, and settings whose names look secret, but only when DEBUG is off:
on the DEBUG page (`make run`) a key posted to a view that then failed was shown in full.
Keys are real money whatever the mode, so the marks apply always.
"""

from __future__ import annotations

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        return True
