"""Small template helpers for the dashboards pages."""

from __future__ import annotations

from typing import Any

from django import template

register = template.Library()


@register.filter
def get_item(mapping: dict | None, key: Any) -> Any:
    """``{{ conflicts|get_item:release.pk }}``: dictionary lookup by a variable key."""
    if not mapping:
        return None
    return mapping.get(key)
