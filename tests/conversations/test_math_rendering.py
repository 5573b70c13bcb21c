"""Math in replies: found by the same rules on the server (rendering.py) and in the browser
(static/js/math.js), kept away from Markdown, never a way in for markup."""

from __future__ import annotations

import time

import pytest

from apps.conversations.rendering import reply_html

CASES = [
    ("Euler: $e^{i\\pi}+1=0$.", "<p>Euler: <span class=math-inline>e^{i\\pi}+1=0</span>.</p>"),
    ("$$\n\\frac{a}{b}\n$$", "<p><span class=math-display>\\frac{a}{b}</span></p>"),
    (
        "\\(x^2\\) and \\[\\sum_{i=1}^n i\\]",
        "<p><span class=math-inline>x^2</span> and <span class=math-display>\\sum_{i=1}^n i</span></p>",
    ),
    (
        "* $\\alpha$\n* **b** $\\beta_{2}$",
        "<ul>\n<li><span class=math-inline>\\alpha</span></li>\n<li><strong>b</strong> <span class=math-inline>\\beta_{2}</span></li>\n</ul>",
    ),
    (
        "a matrix $\\begin{pmatrix}a & b\\\\ c & d\\end{pmatrix}$",
        "<p>a matrix <span class=math-inline>\\begin{pmatrix}a &amp; b\\\\ c &amp; d\\end{pmatrix}</span></p>",
    ),
]

NOT_MATH = [
    "It costs $5 and $10.",  # money: a space before the second $
    "a $5-$10 range",  # the closing $ is followed by a digit
    "`$a$` is code",
    "```python\nprint('$x$')\n```",
    "$ spaced $",
    "$$",
    "\\$3 and \\$4",
    "Tickets cost $5 and $10. In code: `$x$`.",  # a code span wins over money that looks like math
]


@pytest.mark.parametrize(("text", "html"), CASES)
def test_math_becomes_a_span_with_its_tex_untouched_by_markdown(text: str, html: str) -> None:
    assert reply_html(text) == html


@pytest.mark.parametrize("text", NOT_MATH)
def test_money_code_and_escaped_dollars_are_not_math(text: str) -> None:
    assert "math-" not in reply_html(text)


def test_an_escaped_dollar_is_a_dollar() -> None:
    assert reply_html("\\$3 and $x$") == "<p>$3 and <span class=math-inline>x</span></p>"


@pytest.mark.parametrize(
    "text",
    [
        "$$<script>alert(1)</script>$$",
        "$<img src=x onerror=alert(1)>$",
        '[a](http://x/$b" onmouseover="alert(1)$ "t $c$")',
        '$x" onclick="alert(1)$',
    ],
)
def test_tex_cannot_add_markup_or_leave_an_attribute(text: str) -> None:
    html = reply_html(text)
    assert "<script" not in html and "<img" not in html
    assert 'onmouseover="' not in html and 'onclick="' not in html
    assert "onerror=alert" not in html or "&lt;img" in html


def test_tex_too_long_to_typeset_is_left_as_text() -> None:
    long = "$" + "x+" * 2500 + "x$"
    assert "math-" not in reply_html(long)


@pytest.mark.parametrize(
    "text",
    [
        "\\[" * 64_000,  # unclosed display-math openers: each scanned on to the end
        "\\(" * 64_000,  # the same, inline, on one line
        "\\[ x \\] " * 20_000,
        "*a* " * 100_000,  # inline marks past what Markdown's inline processing does at once
        "<a " * 20_000,  # unclosed openers: each scanned on to the end of the paragraph
        "[a](" * 6_000,
        "``a`" * 6_600,
        "![a" * 4_000,
        "![a" * 590,  # just under the openers' limit: still rendered, and still quick
    ],
    ids=["unclosed \\[", "unclosed \\(", "closed \\[", "emphasis", "<", "[a](", "backticks", "![", "590 !["],
)
def test_a_reply_made_to_be_slow_to_render_is_rendered_at_once(text: str) -> None:
    """A reply is rendered on every view of its conversation, on a thread the pages share:
    64,000 unclosed \\[ took 5.5 s (a megabyte of them, an hour)."""
    started = time.thread_time()  # CPU, not the clock: make test runs three suites on two cores
    html = reply_html(text)
    assert time.thread_time() - started < 0.75
    assert html.startswith("<p>")


def test_a_reply_shown_as_plain_text_is_escaped_with_its_line_breaks() -> None:
    text = "<script>alert(1)</script>\n" + "[x](javascript:alert(1)) " * 25_000
    html = reply_html(text)
    assert html.startswith("<p>&lt;script&gt;alert(1)&lt;/script&gt;<br>")
    assert "<a" not in html and "<script" not in html


def test_code_blocks_do_not_count_against_the_openers_limit() -> None:
    """Markdown sets a fenced block aside whole: a long program full of < [ and backticks
    is still highlighted, not shown as plain text."""
    code = "```python\n" + "x = a[i] < b[`j`]\n" * 1_000 + "```\n\nAnd `done`."
    html = reply_html(code)
    assert html.startswith('<div class="highlight">') and "<code>done</code>" in html
