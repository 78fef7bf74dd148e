"""The risk seam: which risk level governs a release.

A release carries the level its manager declared (``risk_level``). The governance app
assesses risk and may raise or override it; the rule that decides the governing level lives
there, written once, and the releases app must not import it. So governance registers a
``RiskSource`` in its AppConfig.ready(), and the release pages, the API and post-release
closing ask this module. With no source registered the declared level governs.

A source says what must be read alongside a release for its level (``related``, for
``select_related``) so a list stays one query, and gives the same rule as a filter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Case, CharField, Expression, F, Q, QuerySet, Value, When

from .choices import RiskLevel

if TYPE_CHECKING:
    from .models import Release


@dataclass(frozen=True)
class RiskSource:
    # The governing level of a release read with ``related`` (no query of its own).
    level: Callable[[Release], str]
    # The governing level read fresh (a query), for services holding a bare release.
    fresh_level: Callable[[Release], str]
    # Releases whose governing level is the given one, as a filter over the release row
    # joined to ``related``: the same rule as ``level``.
    level_q: Callable[[str], Q]
    # The header of the release page: {"level": ..., "assessed": bool, ...why...}, from a
    # release read with ``header_related``.
    header: Callable[[Release], dict[str, Any]]
    # Relations ``level`` reads; fields of them it does not need (lists defer them); the
    # relations the header reads besides.
    related: tuple[str, ...] = ()
    deferred: tuple[str, ...] = ()
    header_related: tuple[str, ...] = ()


_source: RiskSource | None = None


def register_risk_source(source: RiskSource) -> RiskSource:
    """Let ``source`` decide the governing level (one source; idempotent)."""
    global _source
    if _source is not None and _source is not source:
        raise ValueError("A risk source is already registered.")
    _source = source
    return source


def unregister_risk_source(source: RiskSource) -> None:
    global _source
    if _source is source:
        _source = None


def registered_risk_source() -> RiskSource | None:
    return _source


def governing_level(release: Release) -> str:
    """The level governing ``release``, read with ``with_risk`` (else a query per call)."""
    return _source.level(release) if _source else release.risk_level


def current_governing_level(release: Release) -> str:
    """The level governing ``release``, read fresh."""
    return _source.fresh_level(release) if _source else release.risk_level


def governing_level_q(levels: Iterable[str]) -> Q:
    """Releases governed by any of ``levels``, for a queryset read ``with_risk``."""
    match = Q()
    for level in levels:
        match |= _source.level_q(level) if _source else Q(risk_level=level)
    return match


def governing_level_expression() -> Expression:
    """The governing level as a SQL expression over the release row joined to the source's
    ``related`` (``governing_level_q`` for each level), for reads of values rather than
    releases (the board's cards): the same rule as ``governing_level``."""
    if _source is None:
        return F("risk_level")
    return Case(
        *(When(_source.level_q(level), then=Value(level)) for level in RiskLevel.values),
        default=F("risk_level"),
        output_field=CharField(),
    )


def risk_header(release: Release) -> dict[str, Any]:
    """What the release page's header shows of risk, read ``with_risk(header=True)``."""
    if _source:
        return _source.header(release)
    return {"level": release.risk_level, "assessed": False}


def with_risk(qs: QuerySet[Release], *, lean: bool = False, header: bool = False) -> QuerySet:
    """``qs`` reading what the governing level needs in the same query: ``lean`` leaves out
    what only the header shows, ``header`` adds what it reads besides."""
    if _source is None:
        return qs
    # Never called empty: select_related() would follow every relation, defer() undo deferral.
    if related := (*_source.related, *(_source.header_related if header else ())):
        qs = qs.select_related(*related)
    if lean and _source.deferred:
        qs = qs.defer(*_source.deferred)
    return qs
