"""Release notes are rendered from Markdown and sanitised: no raw HTML, no script URLs."""

from __future__ import annotations

import pytest

from releases.markdown import render_markdown


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
    html = render_markdown(source)
    assert 'href="javascript' not in html.lower()
    assert 'href="data' not in html.lower()


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
    html = render_markdown(source)
    assert "<img" not in html and "<div" not in html and "<p onclick" not in html
    assert " onerror=" not in html and " onclick=" not in html and " onmouseover=" not in html


def test_tables_and_code_survive():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n```\nmake run\n```")
    assert "<table>" in html and "<td>1</td>" in html
    assert "<pre><code>make run\n</code></pre>" in html


def test_empty_input():
    assert render_markdown("") == ""
    assert render_markdown(None) == ""
