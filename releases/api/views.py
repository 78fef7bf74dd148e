"""Releases over REST: thin views over selectors (reads) and services (writes)."""

from __future__ import annotations

import django_filters
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .. import readiness, risk, selectors, services
from ..choices import ReleaseState, ReleaseType, RiskLevel
from ..models import Release
from .filters import UtcIsoDateTimeFilter
from .serializers import (
    AuditEventSerializer,
    ReleaseDetailSerializer,
    ReleaseListSerializer,
    ReleaseWriteSerializer,
    TransitionErrorSerializer,
    TransitionInputSerializer,
)


class ReleaseFilter(django_filters.FilterSet):
    state = django_filters.MultipleChoiceFilter(choices=ReleaseState.choices)
    service = django_filters.CharFilter(field_name="services__slug", distinct=True)
    team = django_filters.CharFilter(field_name="services__team__slug", distinct=True)
    release_type = django_filters.ChoiceFilter(choices=ReleaseType.choices)
    risk_level = django_filters.ChoiceFilter(
        choices=RiskLevel.choices,
        help_text=(
            "The risk level the release manager declared (the `risk_level` field), not the "
            "level governance uses: filter on `governing_risk_level` for that."
        ),
    )
    governing_risk_level = django_filters.MultipleChoiceFilter(
        choices=RiskLevel.choices,
        method="filter_governing_risk_level",
        help_text=(
            "The risk level governance uses (the `governing_risk_level` field): the override "
            "when there is one, else the higher of the computed and the declared level. "
            "Repeat to match any of several levels."
        ),
    )
    window_from = UtcIsoDateTimeFilter(field_name="window_end", lookup_expr="gte")
    window_to = UtcIsoDateTimeFilter(field_name="window_start", lookup_expr="lte")

    class Meta:
        model = Release
        fields = ["state", "service", "team", "release_type", "risk_level"]

    def filter_governing_risk_level(self, queryset, name, value):
        # The same rule as the serializer's field, in SQL over the release joined to what
        # the level needs (releases.risk), so the list stays one query for its rows.
        if not value:
            return queryset
        return queryset.filter(risk.governing_level_q(value))


def _transition_action(name: str):
    service = services.TRANSITION_SERVICES[name]

    @extend_schema(
        request=TransitionInputSerializer,
        responses={
            200: ReleaseDetailSerializer,
            403: TransitionErrorSerializer,
            409: TransitionErrorSerializer,
        },
        summary=f"{services.TRANSITION_LABELS[name]} (release transition)",
    )
    def handler(self, request, pk=None):
        release = self.get_object()
        data = TransitionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        service(release=release, actor=request.user, reason=data.validated_data.get("reason", ""))
        fresh = selectors.release_detail(viewer=request.user, pk=release.pk)
        return Response(ReleaseDetailSerializer(fresh, context={"request": request}).data)

    handler.__name__ = name
    return action(detail=True, methods=["post"], url_path=name.replace("_", "-"))(handler)


class ReleaseViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Releases. Outsiders see none (404 on detail); tokens see their services' releases."""

    filterset_class = ReleaseFilter

    def get_queryset(self):
        if self.action == "list":
            return selectors.release_list(viewer=self.request.user)
        return risk.with_risk(
            selectors.visible_releases(viewer=self.request.user)
            .prefetch_related("services", "scope_items", "risks")
            .select_related("owner", "product_owner", "rollback_plan")
        )  # what governing_risk_level reads rides along (no query of its own)

    def get_serializer_class(self):
        if self.action == "list":
            return ReleaseListSerializer
        if self.action in ("create", "partial_update"):
            return ReleaseWriteSerializer
        return ReleaseDetailSerializer

    def _detail(self, release: Release, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.release_detail(viewer=self.request.user, pk=release.pk)
        return Response(
            ReleaseDetailSerializer(fresh, context={"request": self.request}).data, status=code
        )

    @extend_schema(request=ReleaseWriteSerializer, responses={201: ReleaseDetailSerializer})
    def create(self, request):
        serializer = ReleaseWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        release = services.release_create(actor=request.user, **serializer.validated_data)
        return self._detail(release, status.HTTP_201_CREATED)

    @extend_schema(request=ReleaseWriteSerializer, responses={200: ReleaseDetailSerializer})
    def partial_update(self, request, pk=None):
        release = self.get_object()
        serializer = ReleaseWriteSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.release_update(
            release=release, actor=request.user, changes=dict(serializer.validated_data)
        )
        return self._detail(release)

    @extend_schema(responses={200: AuditEventSerializer(many=True)})
    @action(detail=True, methods=["get"], url_path="audit-events")
    def audit_events(self, request, pk=None):
        release = self.get_object()
        events = selectors.release_audit_events(release=release)
        page = self.paginate_queryset(events)
        return self.get_paginated_response(AuditEventSerializer(page, many=True).data)

    @extend_schema(responses={200: OpenApiResponse(description="Blockers per transition")})
    @action(detail=True, methods=["get"], url_path="blockers")
    def blockers(self, request, pk=None):
        release = self.get_object()
        names = [t.name for t in release.get_available_state_transitions()]
        return Response(
            {name: [b.as_dict() for b in readiness.blockers_for(release, name)] for name in names}
        )

    locals().update({name: _transition_action(name) for name in services.TRANSITION_SERVICES})
