"""Replies as HTML: Markdown rendered on the server, code highlighted, then sanitised.

Model output is untrusted. Whatever it contains (<script>, event handlers, javascript:
links, raw HTML), only the tags and attributes listed here survive, so the page can put the
result in place as it is.

Math (TeX between $$ $$, \\[ \\], \\( \\) or $ $) is taken out before Markdown can eat its
backslashes and put back as <span class="math-inline|math-display">TeX, escaped</span>, which
the page typesets with KaTeX (static/js/math.js). The chat page's live rendering finds math
by the same rules (MATH_PATTERN, in chat.js too).
"""

from __future__ import annotations

import functools
import html
import re
import secrets
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


# Code is left alone (a fence, to its closing fence or the end; an inline code span); math is
# $$display$$, \\[display\\], \\(inline\\), or $inline$ as pandoc reads it: the opening $ has
# no space after it, the closing one no space before it and no digit after it, all on one
# line ("$5 and $10" is money, not math). Inline math has no backtick in it (a code span
# wins). A \\[ or \\( span holds no opener of its own kind: else each of many unclosed
# openers scanned on to the end (16,000 of them took a second, a megabyte of them an hour,
# on every view of the reply). The same pattern is in static/js/math.js.
MATH_PATTERN = re.compile(
    r"(?P<fence>^ {0,3}(?P<mark>`{3,}|~{3,})[^\n]*(?:\n[\s\S]*?(?:\n {0,3}(?P=mark)[ \t]*(?=\n|$(?![\s\S]))|$(?![\s\S]))|$(?![\s\S])))"
    r"|(?P<code>(?P<ticks>`+)[\s\S]+?(?P=ticks))"
    r"|(?P<dollar>\\\$)"
    r"|\$\$(?P<display>[\s\S]+?)\$\$"
    r"|\\\[(?P<display2>(?:(?!\\\[)[\s\S])+?)\\\]"
    r"|\\\((?P<inline2>(?:(?!\\\()[^\n`])+?)\\\)"
    r"|(?<![\\$])\$(?P<inline>[^\s$`](?:[^$\n`]*?[^\s\\$`])?)\$(?!\d)",
    re.MULTILINE,
)
# Longer TeX is shown as it is, not typeset (KaTeX's time grows with it).
MATH_MAX_CHARS = 4000


def _math_out(text: str) -> tuple[str, dict[str, tuple[str, bool]]]:
    """The text with each math span replaced by a placeholder Markdown leaves alone, and the
    placeholders' TeX (and whether it is display math)."""
    found: dict[str, tuple[str, bool]] = {}
    nonce = ""  # drawn at the first math span: most replies have none

    def swap(match: re.Match[str]) -> str:
        nonlocal nonce
        if match["fence"] is not None or match["code"] is not None:
            return match[0]
        if match["dollar"] is not None:
            return "$"  # \\$: a dollar sign, never math
        tex = match["display"] or match["display2"] or match["inline2"] or match["inline"] or ""
        if not tex.strip() or len(tex) > MATH_MAX_CHARS:
            return match[0]
        nonce = nonce or secrets.token_hex(4)
        key = f"wcmath{nonce}x{len(found)}z"
        found[key] = (tex.strip(), match["display"] is not None or match["display2"] is not None)
        return key

    return MATH_PATTERN.sub(swap, text), found


def _math_in(html_text: str, found: dict[str, tuple[str, bool]]) -> str:
    """Placeholders back as math spans. Written without a quote character, and the TeX with
    its quotes escaped, so a placeholder that ended up inside an attribute (a link's URL or
    title) stays text inside that attribute and cannot end it."""
    for key, (tex, display) in found.items():
        kind = "math-display" if display else "math-inline"
        html_text = html_text.replace(key, f"<span class={kind}>{html.escape(tex)}</span>", 1)
    return html_text


# Python-Markdown's inline processing grows faster than the text with the marks it has to
# match, and much faster with openers it cannot close: every unclosed "<", "[" or backtick
# run is scanned on to the end of its paragraph. 4,000 "![a" took 7.4 s, 64,000 "\\[" 5.5 s,
# of a thread every view of the conversation shares. A reply with more such openers outside
# its code blocks (which Markdown sets aside whole) than OPENERS_MAX, or more marks of any
# kind than INLINE_MARKS_MAX, is shown as plain text (escaped, its line breaks kept): at
# these limits a reply renders in well under a second.
OPENERS_MAX = 600
INLINE_MARKS_MAX = 20_000
_INLINE_MARKS = re.compile(r"[\\`*_\[\]<>&!~]")
_OPENERS = re.compile(r"<|\[|`+")  # a run of backticks opens (or closes) one code span
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def _too_marked(text: str) -> bool:
    if len(text) <= OPENERS_MAX:
        return False
    if len(text) > INLINE_MARKS_MAX and len(_INLINE_MARKS.findall(text)) > INLINE_MARKS_MAX:
        return True
    openers, fence = 0, ""
    for line in text.splitlines():
        opening = _FENCE.match(line)
        if fence:
            if opening and opening[1][0] == fence[0] and len(opening[1]) >= len(fence):
                fence = ""
            continue
        if opening:
            fence = opening[1]
            continue
        openers += len(_OPENERS.findall(line))
        if openers > OPENERS_MAX:
            return True
    return False


# Replies rendered lately, by their text: a conversation's page renders each of its replies
# on every view (a reload, a teacher reading it, the versions switcher), the same text to the
# same HTML. Texts up to RENDERED_CACHE_CHARS only, so the cache stays a few megabytes.
RENDERED_CACHE_SIZE = 512
RENDERED_CACHE_CHARS = 16_000


def reply_html(text: str) -> str:
    """The reply's Markdown as sanitised HTML (math as spans the page typesets)."""
    return _reply_html_kept(text) if len(text) <= RENDERED_CACHE_CHARS else _reply_html(text)


@functools.lru_cache(maxsize=RENDERED_CACHE_SIZE)
def _reply_html_kept(text: str) -> str:
    return _reply_html(text)


def _reply_html(text: str) -> str:
    if _too_marked(text):
        return "<p>" + html.escape(text).replace("\n", "<br>\n") + "</p>"
    text, math = _math_out(text)
    cleaned = nh3.clean(
        _renderer().reset().convert(text),
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=LINK_REL,
    )
    # After sanitising: fixed tags and classes around escaped text.
    return _math_in(cleaned, math) if math else cleaned
