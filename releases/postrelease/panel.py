"""The post-release panel's seam: facts other apps own, shown beside the post-release work.

The panel lists, say, the incidents raised while a release was deployed; incidents belong to
the pipelines app, which the releases app must not import. So higher apps register a
provider per panel entry in their AppConfig.ready() (pipelines registers ``incidents``), and
the panel asks for each entry by name. With no provider registered, an entry is absent and
the template shows its empty state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..models import Release

Provider = Callable[["Release"], Any]
_providers: dict[str, Provider] = {}


def register(name: str, provider: Provider) -> Provider:
    """Provide the panel entry ``name`` (idempotent; one provider per name)."""
    current = _providers.get(name)
    if current is not None and current is not provider:
        raise ValueError(f"The post-release panel entry {name!r} already has a provider.")
    _providers[name] = provider
    return provider


def unregister(name: str) -> None:
    _providers.pop(name, None)


def entries(release: Release) -> dict[str, Any]:
    """Every registered entry for ``release``, by name, in registration order."""
    return {name: provider(release) for name, provider in _providers.items()}
