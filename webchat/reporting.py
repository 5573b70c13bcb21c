"""Error reports that never carry a secret, DEBUG or not.

Django's SafeExceptionReporterFilter hides what views mark with sensitive_post_parameters
and sensitive_variables, and settings whose names look secret, but only when DEBUG is off:
on the DEBUG page (`make run`) a key posted to a view that then failed was shown in full.
Keys are real money whatever the mode, so the marks apply always.

A password can also sit inside a URL in a setting whose name looks harmless (REDIS_URL,
CELERY_BROKER_URL, CACHES' LOCATION, the channel layer's hosts): those are shown with the
password starred.
"""

from __future__ import annotations

import re
from typing import Any

from django.http import HttpRequest
from django.views.debug import SafeExceptionReporterFilter

# scheme://user:password@host, or scheme://:password@host (Redis)
# (the password runs to the last @ before the host: redis-py reads redis://:p@ss@host as "p@ss")
_URL_PASSWORD = re.compile(r"(?P<before>[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:)[^/\s]*@")


class SecretSafeExceptionReporterFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        return True

    def cleanse_setting(self, key: Any, value: Any) -> Any:
        if isinstance(value, str) and not (isinstance(key, str) and self.hidden_settings.search(key)):
            return self._url_passwords_starred(value)
        return super().cleanse_setting(key, value)

    def get_traceback_frame_variables(self, request: HttpRequest | None, tb_frame: Any) -> Any:
        """A frame's local strings too (a Redis client's URL, in its own frames when it fails),
        and those in its lists, tuples and dicts, one level down."""
        starred = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if isinstance(value, str):
                value = self._url_passwords_starred(value)
            elif isinstance(value, list | tuple):
                value = type(value)(self._url_passwords_starred(v) if isinstance(v, str) else v for v in value)
            elif isinstance(value, dict):
                value = {k: self._url_passwords_starred(v) if isinstance(v, str) else v for k, v in value.items()}
            starred.append((name, value))
        return starred

    def _url_passwords_starred(self, value: str) -> str:
        text = str(value)  # a lazy string (a settings object's proxy) passes isinstance too
        cleansed = _URL_PASSWORD.sub(rf"\g<before>{self.cleansed_substitute}@", text)
        return cleansed if cleansed != text else value
