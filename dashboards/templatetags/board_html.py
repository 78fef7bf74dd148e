"""The board's cards built in Python: one tag call per column instead of a template include
per card.

Through the template engine a card cost ~65 µs (about thirty variable lookups, each through
``Variable._resolve_lookup`` and ``conditional_escape``), the larger part of what each extra
card added from 1× to 100× data. The markup is the same the card template drew (classes, ids,
aria and htmx attributes); every value is escaped with ``html.escape``, which escapes the same
five characters as Django's ``escape`` without its lazy-string wrapper.

``card_html`` is the only source of a card's markup: the board draws its columns with it
(``board_cards``) and a refused move returns one card from it (``views.board_move``).
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape as esc

from django import template
from django.utils.safestring import SafeString, mark_safe

from releases.choices import RiskLevel

register = template.Library()

_RISK_LABELS = dict(RiskLevel.choices)


def _tag(name: str) -> str:
    return f'<span class="tag">{esc(name)}</span> '


def _risk(level: str) -> str:
    """The governing risk, as the release list's badge draws it (releases_tags.risk_badge)."""
    if not level:
        return ""
    label = esc(_RISK_LABELS.get(level, level))
    return (
        f'\n    <div><dt>Risk</dt><dd><span class="badge badge-risk risk-{esc(level)}">'
        f'<span class="visually-hidden">Risk: </span>{label}</span></dd></div>'
    )


def _move_error(message: str, blockers: list[str]) -> str:
    items = ""
    if len(blockers) > 1:
        items = (
            '\n    <ul class="blockers">'
            + "".join(f"<li>{esc(str(b))}</li>" for b in blockers)
            + "</ul>"
        )
    return (
        '\n  <div class="alert alert-error move-error" role="alert">\n'
        f"    <p><strong>{esc(str(message))}</strong></p>{items}\n  </div>"
    )


def _move_menu(card, menu: str | None) -> str:
    """The "Move to…" menu: loaded when it opens (htmx GET of ``moves_url``; without
    JavaScript the link leads to the same menu as a page), or open with ``menu`` (the move
    form, already rendered) when the card comes back from a refused move."""
    summary = (
        '<summary class="button button-small">Move to…'
        f'<span class="visually-hidden"> ({esc(card.label)})</span></summary>'
    )
    if menu is not None:
        return (
            '\n  <details class="move-menu no-print" open>\n'
            f"    {summary}\n"
            f'    <div class="move-menu-body">{menu}</div>\n  </details>'
        )
    url = esc(card.moves_url)
    return (
        f'\n  <details class="move-menu no-print" hx-get="{url}" hx-trigger="toggle once"'
        ' hx-target="find .move-menu-body">\n'
        f"    {summary}\n"
        f'    <div class="move-menu-body"><a href="{url}">Choose a move for '
        f"{esc(card.label)}</a></div>\n  </details>"
    )


def card_html(
    card,
    *,
    menu: str | None = None,
    move_error: str = "",
    move_blockers: Iterable[str] = (),
) -> SafeString:
    """One card (an ``<article>``) from a ``selectors.board.Card`` whose ``detail_url`` and
    ``moves_url`` are set. ``menu``: the move form's markup (safe), to show the menu open;
    ``move_error``/``move_blockers``: a refused move's reason, shown on the card."""
    key = esc(str(card.key))
    delay = esc(card.delay)
    facts = ""
    if card.gates_total:
        total, done, text = card.gates_total, card.gates_done, esc(card.gates_text)
        facts = (
            f'\n    <div class="card-gates"><dt>Gates</dt><dd><meter min="0" max="{total}"'
            f' value="{done}" aria-label="Gates done">{text}</meter> {text}</dd></div>'
        )
    extra = ""
    if delay:
        extra += (
            f'\n  <p class="delay delay-{delay}"><strong>{esc(card.delay_label)}:</strong> '
            f"{esc(card.delay_reason)}</p>"
        )
    if card.top_blocker:
        more = card.more_blockers
        extra += (
            '\n  <p class="card-blocker"><span class="muted">Blocked:</span> '
            f"{esc(card.top_blocker)}"
            + (f' <span class="muted">(+{more} more)</span>' if more else "")
            + "</p>"
        )
    for note in card.break_glass:
        extra += f'\n  <p class="card-break-glass">🔨 {esc(note)}</p>'
    if move_error:
        extra += _move_error(move_error, list(move_blockers))
    if card.moves:
        extra += _move_menu(card, menu)
    return mark_safe(
        f'<article id="card-{key}" class="board-card{" delay-" + delay if delay else ""}"'
        f' aria-labelledby="card-title-{key}">\n'
        f'  <h3 id="card-title-{key}" class="card-title"><a href="{esc(card.detail_url)}">'
        f'{esc(card.name)}</a> <span class="card-version">{esc(card.version)}</span></h3>\n'
        f'  <p class="card-services">{"".join(map(_tag, card.service_names))}</p>\n'
        '  <dl class="card-facts">\n'
        f"    <div><dt>Owner</dt><dd>{esc(card.owner_name)}</dd></div>\n"
        f"    <div><dt>Target</dt><dd>{esc(card.target_text)}</dd></div>{_risk(card.risk)}{facts}\n"
        f"  </dl>{extra}\n</article>"
    )


@register.simple_tag
def board_cards(cards) -> SafeString:
    """A column's cards, each in its ``<li>`` (one tag call per column, not per card)."""
    return mark_safe("".join(f"<li>{card_html(card)}</li>\n" for card in cards))
