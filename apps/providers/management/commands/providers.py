"""`python manage.py providers --lang en|zh`: the provider catalog, and which are usable now."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.providers.models import Credential, Provider
from apps.providers.services import site_env_key

LABELS = {
    "en": {
        "usable": "usable",
        "not": "no key yet",
        "none": "no key needed",
        "env": "site key from environment",
        "site": "site key",
        "class": "class keys",
        "user": "personal keys",
        "models": "models",
    },
    "zh": {
        "usable": "可用",
        "not": "尚无密钥",
        "none": "无需密钥",
        "env": "环境变量中的站点密钥",
        "site": "站点密钥",
        "class": "班级密钥",
        "user": "个人密钥",
        "models": "模型",
    },
}


class Command(BaseCommand):
    help = "List the providers (in English or Chinese) and whether a key for each exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--lang", choices=["en", "zh"], default="en")

    def handle(self, *args: Any, lang: str = "en", **options: Any) -> None:
        words = LABELS[lang]
        for provider in Provider.objects.filter(enabled=True).prefetch_related("models").order_by("sort_order"):
            name = provider.name_zh if lang == "zh" else provider.name_en
            active = Credential.objects.filter(provider=provider, status=Credential.Status.ACTIVE)
            sources = []
            if not provider.needs_key:
                sources.append(words["none"])
            if site_env_key(provider=provider) is not None:
                sources.append(words["env"])
            for scope in ("site", "class", "user"):
                count = active.filter(scope=scope).count()
                if count:
                    sources.append(f"{words[scope]} ×{count}")
            status = f"{words['usable']} ({', '.join(sources)})" if sources else words["not"]
            models = ", ".join(m.name for m in provider.models.all() if m.enabled)
            self.stdout.write(f"{provider.slug:<11} {name:<32} {status}")
            self.stdout.write(f"{'':<11} {words['models']}: {models}")
            if provider.signup_url:
                self.stdout.write(f"{'':<11} {provider.signup_url}")
