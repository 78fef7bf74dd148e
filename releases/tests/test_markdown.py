"""Release notes are rendered from Markdown and sanitised: no raw HTML, no script URLs."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest

from releases.markdown import render_markdown, sanitize_html


class _Elements(HTMLParser):
    """Collects the real elements and attributes of some HTML (escaped text is not one)."""

    def __init__(self, html: str):
        super().__init__()
        self.elements: list[tuple[str, dict]] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def _assert_inert(html: str) -> None:
    for tag, attrs in _Elements(html).elements:
        assert tag not in {"script", "img", "iframe", "style", "div", "object"}, html
        for name, value in attrs.items():
            assert not name.startswith("on"), html
            assert name != "style" or "url(" not in (value or ""), html
            if name in {"href", "src"}:
                assert (value or "").lower().startswith(("http:", "https:", "mailto:", "#")), html


def test_renders_markdown():
    html = render_markdown("# 2.4.0\n\n- **Faster** checkout\n- [Docs](https://example.test/x)")
    assert "<h1>2.4.0</h1>" in html
    assert "<strong>Faster</strong>" in html
    assert '<a href="https://example.test/x" rel="noopener noreferrer nofollow">Docs</a>' in html


def test_strips_script_tags():
    html = render_markdown("Hello <script>alert('x')</script>\n\n<script>\nalert(1)\n</script>")
    assert "<script" not in html
    assert "&lt;script&gt;" in html  # shown as text, not run


@pytest.mark.parametrize(
    "source",
    [
        "[click](javascript:alert(1))",
        "[click](JAVASCRIPT:alert(1))",
        "[click](  javascript:alert(1))",
        '<a href="javascript:alert(1)">click</a>',
        "[click](data:text/html;base64,PHNjcmlwdD4=)",
        "[click][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_no_javascript_or_data_links(source):
    _assert_inert(render_markdown(source))
    _assert_inert(sanitize_html(source))


@pytest.mark.parametrize(
    "source",
    [
        '<img src=x onerror="alert(1)">',
        '<p onclick="alert(1)">hi</p>',
        '<a href="https://x.test" onmouseover="alert(1)">x</a>',
        '<div style="background:url(javascript:alert(1))">x</div>',
    ],
)
def test_no_event_handler_attributes_or_raw_html(source):
    _assert_inert(render_markdown(source))  # layer 1: raw HTML arrives as text
    _assert_inert(sanitize_html(source))  # layer 2: the allow-list, even for real HTML


def test_sanitizer_strips_script_and_keeps_safe_markup():
    html = sanitize_html('<p>ok <script>alert(1)</script><a href="https://x.test">x</a></p>')
    assert "<script" not in html and "alert(1)" not in html
    assert '<a href="https://x.test" rel="noopener noreferrer nofollow">x</a>' in html


def test_tables_and_code_survive():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nmake run\n```")
    assert "<table>" in html and "<td>1</td>" in html
    assert "<pre><code>make run\n</code></pre>" in html


def test_empty_input():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
