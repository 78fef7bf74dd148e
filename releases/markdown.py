"""Release notes in Markdown, rendered to HTML that is safe to show to every reader.

Two layers, because release notes are written by many people and read by everyone:
markdown-it-py renders with raw HTML disabled (so ``<script>`` arrives as text), and nh3
then keeps only an allow-list of tags, attributes and URL schemes (so a crafted link such
as ``javascript:…`` or an ``on*`` attribute can never survive, whatever the parser does).
Images are left out on purpose: notes never make a reader's browser fetch remote content.
"""

from __future__ import annotations

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = {
    "a",
    "abbr",
    "blockquote",
    "br",
    "code",
    "del",
    "em",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "hr",
    "li",
    "ol",
    "p",
    "pre",
    "s",
    "strong",
    "table",
    "tbody",
    "td",
    "th",
    "thead",
    "tr",
    "ul",
}
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title"},
    "abbr": {"title"},
    "ol": {"start"},
    "td": {"style"},
    "th": {"style"},
}
URL_SCHEMES = {"http", "https", "mailto"}

_parser = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
    ["table", "strikethrough"]
)


def render_markdown(text: str | None) -> str:
    """Markdown → sanitised HTML. The result is safe to mark_safe in a template."""
    if not text:
        return ""
    return sanitize_html(_parser.render(text))


def sanitize_html(html: str) -> str:
    """Keep only allow-listed tags, attributes and URL schemes (the second layer)."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel="noopener noreferrer nofollow",
        filter_style_properties={"text-align"},
    )
