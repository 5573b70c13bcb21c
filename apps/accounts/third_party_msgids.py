"""Strings Django admin shows that their authors ship without a zh-hans translation:
django-axes has no Chinese catalog at all, and Django 5.2's newest admin strings are not in
its zh_Hans catalog yet. Django looks a msgid up in every catalog, ours first, so listing
them here (gettext_noop marks them; nothing imports this module) makes `makemessages` keep
them in locale/*/django.po, where they are translated. Each must match the library's
msgid exactly; tests/test_error_pages.py checks they still exist upstream."""

from __future__ import annotations

from django.utils.translation import gettext_noop, ngettext_lazy

# django-axes 8: axes/models.py and axes/admin.py ("Username", "Yes", "No" are Django's).
AXES_MSGIDS = (
    gettext_noop("access attempt"),
    gettext_noop("access attempts"),
    gettext_noop("access attempt expiration"),
    gettext_noop("access attempt expirations"),
    gettext_noop("access failure"),
    gettext_noop("access failures"),
    gettext_noop("access log"),
    gettext_noop("access logs"),
    gettext_noop("User Agent"),
    gettext_noop("IP Address"),
    gettext_noop("HTTP Accept"),
    gettext_noop("Path"),
    gettext_noop("Attempt Time"),
    gettext_noop("Access lock out"),
    gettext_noop("GET Data"),
    gettext_noop("POST Data"),
    gettext_noop("Failed Logins"),
    gettext_noop("Access Attempt"),
    gettext_noop("Expires At"),
    gettext_noop("The time when access attempt expires and is no longer valid."),
    gettext_noop("Logout Time"),
    gettext_noop("Session key hash (sha256)"),
    gettext_noop("Locked Out"),
    gettext_noop("Form Data"),
    gettext_noop("Meta Data"),
    gettext_noop("Clean up expired attempts"),
    gettext_noop("Not set"),
    gettext_noop("Attempt Remaining"),
)

# Django 5.2 contrib.admin strings missing from its zh_Hans catalog.
DJANGO_ADMIN_MSGIDS = (
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    gettext_noop("Error:"),
    gettext_noop("Forgotten your login credentials?"),
    gettext_noop("In case you’ve forgotten, you are:"),
)

# Django 5.2's MinimumLengthValidator error: its zh_Hans catalog has only the older
# "%(min_length)d" wording, so a too-short password (sign-up, a roster's password column, a
# reset) was refused in English on the Chinese pages. Lazy: marked, never evaluated.
DJANGO_AUTH_PLURAL_MSGIDS = (
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        "min_length",
    ),
)
