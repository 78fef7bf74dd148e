"""Template helpers for the release pages: state badges, sanitised Markdown, audit diffs."""

from __future__ import annotations

from typing import Any

from django import template
from django.utils.safestring import mark_safe

from core.roles import Role, has_role, user_roles

from .. import evidence
from ..choices import ReleaseState, RiskLevel
from ..markdown import render_markdown
from ..risk import governing_level
from ..services import TRANSITION_LABELS

register = template.Library()

_STATE_LABELS = dict(ReleaseState.choices)
_RISK_LABELS = dict(RiskLevel.choices)
_ROLE_LABELS = dict(Role.choices)


@register.inclusion_tag("releases/partials/state_badge.html")
def state_badge(state: str) -> dict[str, str]:
    """A badge that carries its meaning in text as well as colour (never colour alone)."""
    return {"state": state, "label": _STATE_LABELS.get(state, state)}


@register.inclusion_tag("releases/partials/risk_badge.html")
def risk_badge(risk: str) -> dict[str, str]:
    return {"risk": risk, "label": _RISK_LABELS.get(risk, risk)}


@register.filter
def governing_risk(release) -> str:
    """The risk level governance uses for a release read ``releases.risk.with_risk``
    (otherwise this reads what it needs, one query per call)."""
    return governing_level(release)


@register.filter
def evidence_label(value, kind: str):
    """The label an evidence pack's summary shows for a stored value (releases.evidence)."""
    return evidence.label(kind, value)


@register.filter(name="markdown")
def markdown_filter(text: str | None) -> str:
    # render_markdown sanitises with an allow-list, which is what makes mark_safe sound here.
    return mark_safe(render_markdown(text))


@register.simple_tag
def role_labels(user) -> list[str]:
    """The display names of a user's roles, in the order roles are declared."""
    held = user_roles(user)
    return [label for value, label in _ROLE_LABELS.items() if value in held]


@register.filter
def holds_role(user, roles: str) -> bool:
    """``user|holds_role:"release_manager,administrator"``: any of the comma-separated roles."""
    return has_role(user, *roles.split(","))


@register.filter
def audit_changes(event) -> list[dict[str, Any]]:
    """Rows of (field, before, after) for an audit event's before/after snapshots."""
    before = event.before if isinstance(event.before, dict) else {}
    after = event.after if isinstance(event.after, dict) else {}
    keys = list(dict.fromkeys([*before.keys(), *after.keys()]))
    return [
        {
            "field": key.replace("_", " "),
            "before": before.get(key),
            "after": after.get(key),
            "has_before": key in before,
            "has_after": key in after,
        }
        for key in keys
    ]


@register.filter
def state_label(state: str) -> str:
    return _STATE_LABELS.get(state, state)


@register.filter
def action_label(action: str) -> str:
    """'release.start_work' → 'Start work'; 'scope.add' → 'Scope add'."""
    prefix, _, name = action.partition(".")
    if prefix == "release" and name in TRANSITION_LABELS:
        return TRANSITION_LABELS[name]
    words = f"{prefix} {name}".replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@register.filter
def person(user, empty: str = "—") -> str:
    """A user's full name, else their username; ``empty`` when there is nobody."""
    if user is None:
        return empty
    return user.get_full_name() or user.get_username()
