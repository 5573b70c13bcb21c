"""The site's admin: Django's, with change lists that answer a date out of range as a bad
filter, not a server error.

Django's date hierarchy turns `?created_at__year=9999` into the range [9999-01-01,
10000-01-01): the end is past the last year a datetime holds, and the ValueError (or an
OverflowError for the last month or day) escapes as a 500. Here the same values are
answered as any other bad filter is: the change list again, with "?e=1" (Django's
IncorrectLookupParameters). Every model admin registered on the site gets it, the
project's and third parties' (django-axes) alike.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.http import HttpRequest


class BoundedChangeList(ChangeList):
    def get_filters(self, request: HttpRequest) -> Any:
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc


class DateHierarchyBounded:
    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return BoundedChangeList


class AdminSite(admin.AdminSite):
    def register(self, model_or_iterable: Any, admin_class: Any = None, **options: Any) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, DateHierarchyBounded):
            admin_class = type(
                admin_class.__name__,
                (DateHierarchyBounded, admin_class),
                {"__module__": admin_class.__module__, "__qualname__": admin_class.__qualname__},
            )
        super().register(model_or_iterable, admin_class, **options)


class AdminConfig(DjangoAdminConfig):
    default_site = "webchat.admin_site.AdminSite"
