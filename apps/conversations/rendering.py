"""Replies as HTML: Markdown rendered on the server, code highlighted, then sanitised.

Model output is untrusted. Whatever it contains (<script>, event handlers, javascript:
links, raw HTML), only the tags and attributes listed here survive, so the page can put the
result in place as it is.
"""

from __future__ import annotations

import threading

import markdown
import nh3

ALLOWED_TAGS = {
    "p",
    "br",
    "hr",
    "em",
    "strong",
    "del",
    "code",
    "pre",
    "span",
    "div",
    "blockquote",
    "ul",
    "ol",
    "li",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "a",
    "table",
    "thead",
    "tbody",
    "tr",
    "th",
    "td",
    "sup",
    "sub",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "div": {"class"},
    "code": {"class"},
    "th": {"align"},
    "td": {"align"},
    "ol": {"start"},
}
EXTENSIONS = ["fenced_code", "codehilite", "tables", "sane_lists"]
EXTENSION_CONFIGS = {"codehilite": {"css_class": "highlight", "guess_lang": False}}


_local = threading.local()


def _renderer() -> markdown.Markdown:
    """One Markdown instance per thread, reset between texts: building one loads its
    extensions through entry points, which cost more than rendering a reply."""
    renderer = getattr(_local, "renderer", None)
    if renderer is None:
        renderer = _local.renderer = markdown.Markdown(
            extensions=EXTENSIONS, extension_configs=EXTENSION_CONFIGS, output_format="html"
        )
    return renderer


def reply_html(text: str) -> str:
    html = _renderer().reset().convert(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
