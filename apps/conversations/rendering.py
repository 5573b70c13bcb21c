"""Replies as HTML: Markdown rendered on the server, code highlighted, then sanitised.

Model output is untrusted. Whatever it contains (<script>, event handlers, javascript:
links, raw HTML), only the tags and attributes listed here survive, so the page can put the
result in place as it is.
"""

from __future__ import annotations

import threading

import markdown
import nh3
from pygments.formatters.html import HtmlFormatter

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
URL_SCHEMES = {"http", "https", "mailto"}
LINK_REL = "noopener noreferrer nofollow"


class CodeFormatter(HtmlFormatter):
    """Pygments' HTML, with the fence's language kept on <code class="language-...">: the chat
    page labels code blocks from it, in the server's rendering and in its own live one alike."""

    def __init__(self, lang_str: str = "", **options: object) -> None:
        super().__init__(**options)
        self.lang_str = lang_str

    def _wrap_code(self, source):  # type: ignore[no-untyped-def]
        yield 0, f'<code class="{self.lang_str}">' if self.lang_str else "<code>"
        yield from source
        yield 0, "</code>"


EXTENSION_CONFIGS = {"codehilite": {"css_class": "highlight", "guess_lang": False, "pygments_formatter": CodeFormatter}}


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


def markdown_policy() -> dict[str, object]:
    """The allow-list above, for the chat page's live rendering (DOMPurify) while a reply
    streams: the same tags, attributes and link schemes as the server's final HTML."""
    return {
        "tags": sorted(ALLOWED_TAGS),
        "attributes": {tag: sorted(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        "schemes": sorted(URL_SCHEMES),
        "rel": LINK_REL,
    }


def reply_html(text: str) -> str:
    html = _renderer().reset().convert(text)
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )
