"""Governance over REST: thin views over governance.selectors (reads) and
governance.services (writes). Domain errors become JSON 4xx via config.api."""

from __future__ import annotations

import django_filters
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from releases.api.filters import IdFilter
from releases.selectors import visible_releases

from .. import selectors, services
from ..choices import ChangeState, GateStage, GateStatus
from ..models import (
    AgendaItem,
    BreakGlass,
    FreezeException,
    GateCheck,
    GatePolicy,
    RiskAssessment,
    Vote,
)
from ..readiness import release_blockers
from ..selectors import tally
from . import serializers as s

ERRORS = {
    400: s.GovernanceErrorSerializer,
    403: s.GovernanceErrorSerializer,
    409: s.GovernanceErrorSerializer,
}


def _ok(serializer_class, instance, code=status.HTTP_200_OK, **context) -> Response:
    return Response(serializer_class(instance, context=context).data, status=code)


class GatePolicyViewSet(viewsets.ReadOnlyModelViewSet):
    """Gate policies (read-only here; edited in the admin, each change a new version)."""

    serializer_class = s.GatePolicySerializer
    queryset = GatePolicy.objects.none()  # for the schema; requests read get_queryset

    def get_queryset(self):
        return selectors.gate_policies(viewer=self.request.user)


# Filters on a related row's id are IdFilters, not the ModelChoiceFilters django-filter
# generates: those look the id up among all rows, so an id that does not exist was a 400
# while one the caller may not see filtered to nothing, telling which ids exist.


class GateCheckFilter(django_filters.FilterSet):
    release = IdFilter(field_name="release_id", help_text="Release id.")
    status = django_filters.MultipleChoiceFilter(choices=GateStatus.choices)
    stage = django_filters.ChoiceFilter(choices=GateStage.choices)

    class Meta:
        model = GateCheck
        fields = ["release", "status", "stage", "kind", "role"]


class GateCheckViewSet(viewsets.ReadOnlyModelViewSet):
    """Gate checks of the releases the caller can see; sign off, reject, waive, reset."""

    serializer_class = s.GateCheckSerializer
    filterset_class = GateCheckFilter

    def get_queryset(self):
        return selectors.gate_checks(viewer=self.request.user).order_by("release", "position")

    @extend_schema(
        request=s.CommentInputSerializer, responses={200: s.GateCheckSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"], url_path="sign-off")
    def sign_off(self, request, pk=None):
        """Sign off a manual gate (holders of its role; never the release owner)."""
        data = s.CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gate = services.gate_sign_off(
            gate=self.get_object(), actor=request.user, comment=data.validated_data["comment"]
        )
        return _ok(s.GateCheckSerializer, gate)

    @extend_schema(
        request=s.RequiredCommentInputSerializer, responses={200: s.GateCheckSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        """Refuse a manual sign-off, with a comment."""
        data = s.RequiredCommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gate = services.gate_reject(
            gate=self.get_object(), actor=request.user, comment=data.validated_data["comment"]
        )
        return _ok(s.GateCheckSerializer, gate)

    @extend_schema(
        request=s.JustificationInputSerializer, responses={200: s.GateCheckSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def waive(self, request, pk=None):
        """Waive a gate, with a justification (roles allowed by the policy)."""
        data = s.JustificationInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gate = services.gate_waive(
            gate=self.get_object(),
            actor=request.user,
            justification=data.validated_data["justification"],
        )
        return _ok(s.GateCheckSerializer, gate)

    @extend_schema(
        request=s.ReasonInputSerializer, responses={200: s.GateCheckSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def reset(self, request, pk=None):
        """Put a decided gate back to pending (release managers), with a reason."""
        data = s.ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        gate = services.gate_reset(
            gate=self.get_object(), actor=request.user, reason=data.validated_data["reason"]
        )
        return _ok(s.GateCheckSerializer, gate)


class ChangeRequestFilter(django_filters.FilterSet):
    release = IdFilter(field_name="release_id", help_text="Release id.")
    state = django_filters.MultipleChoiceFilter(choices=ChangeState.choices)

    class Meta:
        model = s.ChangeRequest
        fields = ["state", "change_type", "release"]


class ChangeRequestViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """Change requests: create, edit while draft, and one endpoint per transition."""

    serializer_class = s.ChangeRequestSerializer
    filterset_class = ChangeRequestFilter

    def get_queryset(self):
        return selectors.change_requests(viewer=self.request.user)

    @extend_schema(
        request=s.ChangeRequestWriteSerializer,
        responses={201: s.ChangeRequestSerializer, **ERRORS},
    )
    def create(self, request):
        data = s.ChangeRequestWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        release = fields.pop("release", None)
        if release is not None:
            release = get_object_or_404(visible_releases(viewer=request.user), pk=release.pk)
        cr = services.change_request_create(actor=request.user, release=release, **fields)
        return _ok(s.ChangeRequestSerializer, cr, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.ChangeRequestWriteSerializer(partial=True),
        responses={200: s.ChangeRequestSerializer, **ERRORS},
    )
    def partial_update(self, request, pk=None):
        data = s.ChangeRequestWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        changes = dict(data.validated_data)
        changes.pop("release", None)
        cr = services.change_request_update(
            change_request=self.get_object(), actor=request.user, changes=changes
        )
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(responses={204: None, **ERRORS})
    def destroy(self, request, pk=None):
        """Delete a draft change request."""
        services.change_request_delete(change_request=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={204: None, **ERRORS})
    @action(detail=True, methods=["post"], url_path="withdraw-vote")
    def withdraw_vote(self, request, pk=None):
        """Withdraw the caller's vote before the decision."""
        services.vote_withdraw(change_request=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses={200: s.ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def submit(self, request, pk=None):
        """draft | needs_info → submitted (a standard change is pre-approved at once)."""
        cr = services.change_request_submit(change_request=self.get_object(), actor=request.user)
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(
        request=s.RequiredCommentInputSerializer,
        responses={200: s.ChangeRequestSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="request-info")
    def request_info(self, request, pk=None):
        """in_review → needs_info (CAB chair), saying what is missing."""
        data = s.RequiredCommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cr = services.change_request_request_info(
            change_request=self.get_object(),
            actor=request.user,
            comment=data.validated_data["comment"],
        )
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(
        request=s.ReasonInputSerializer, responses={200: s.ChangeRequestSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def withdraw(self, request, pk=None):
        """Withdraw an undecided change request (it will not happen), with a reason."""
        data = s.ReasonInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cr = services.change_request_withdraw(
            change_request=self.get_object(), actor=request.user, **data.validated_data
        )
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(request=None, responses={200: s.ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def implement(self, request, pk=None):
        """approved → implemented."""
        cr = services.change_request_implement(change_request=self.get_object(), actor=request.user)
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(
        request=s.ReviewInputSerializer, responses={200: s.ChangeRequestSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """implemented → reviewed: the post-implementation review."""
        data = s.ReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        cr = services.change_request_review(
            change_request=self.get_object(), actor=request.user, notes=data.validated_data["notes"]
        )
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(request=None, responses={200: s.ChangeRequestSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """reviewed → closed."""
        cr = services.change_request_close(change_request=self.get_object(), actor=request.user)
        return _ok(s.ChangeRequestSerializer, cr)

    @extend_schema(request=s.VoteInputSerializer, responses={200: s.VoteSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def vote(self, request, pk=None):
        """Cast or change the caller's vote (CAB members; not the requester or owner)."""
        data = s.VoteInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        vote = services.vote_cast(
            change_request=self.get_object(), actor=request.user, **data.validated_data
        )
        return _ok(s.VoteSerializer, vote)

    @extend_schema(responses={200: s.TallySerializer})
    @action(detail=True, methods=["get"])
    def tally(self, request, pk=None):
        """The live quorum status: counts, whether quorum and share are met, and why."""
        decision = tally(self.get_object())
        return Response(
            s.TallySerializer(
                {
                    "outcome": decision.outcome,
                    "reasons": decision.reasons,
                    "approves": decision.approves,
                    "rejects": decision.rejects,
                    "abstains": decision.abstains,
                    "quorum_met": decision.quorum_met,
                    "share_met": decision.share_met,
                    "missing_roles": sorted(decision.missing_roles),
                }
            ).data
        )


class VoteFilter(django_filters.FilterSet):
    change_request = IdFilter(field_name="change_request_id", help_text="Change request id.")

    class Meta:
        model = Vote
        fields = ["change_request", "choice"]


class VoteViewSet(viewsets.ReadOnlyModelViewSet):
    """Votes on the change requests the caller can see."""

    serializer_class = s.VoteSerializer
    filterset_class = VoteFilter

    def get_queryset(self):
        return s.Vote.objects.filter(
            change_request__in=selectors.change_requests(viewer=self.request.user)
        ).select_related("voter")


class CABMeetingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """CAB meetings with their agendas; the chair schedules, builds, reorders and closes."""

    serializer_class = s.CABMeetingSerializer
    filterset_fields = ["state", "kind"]

    def get_queryset(self):
        return selectors.meetings(viewer=self.request.user).prefetch_related(
            "attendees", "items__change_request__requested_by", "items__closed_by"
        )

    def _fresh(self, meeting, code=status.HTTP_200_OK):
        return _ok(s.CABMeetingSerializer, self.get_queryset().get(pk=meeting.pk), code)

    @extend_schema(
        request=s.CABMeetingWriteSerializer, responses={201: s.CABMeetingSerializer, **ERRORS}
    )
    def create(self, request):
        data = s.CABMeetingWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        meeting = services.meeting_create(actor=request.user, **data.validated_data)
        return self._fresh(meeting, status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: s.CABMeetingSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="build-agenda")
    def build_agenda(self, request, pk=None):
        """Add the submitted changes due before the next meeting."""
        meeting = self.get_object()
        services.meeting_build_agenda(meeting=meeting, actor=request.user)
        return self._fresh(meeting)

    @extend_schema(request=s.AgendaAddSerializer, responses={200: s.CABMeetingSerializer, **ERRORS})
    @action(detail=True, methods=["post"], url_path="add-item")
    def add_item(self, request, pk=None):
        meeting = self.get_object()
        data = s.AgendaAddSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.agenda_item_add(
            meeting=meeting,
            change_request=data.validated_data["change_request"],
            actor=request.user,
        )
        return self._fresh(meeting)

    @extend_schema(request=None, responses={200: s.CABMeetingSerializer, **ERRORS})
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Close every open item (by the quorum rule) and the meeting."""
        meeting = services.meeting_close(meeting=self.get_object(), actor=request.user)
        return self._fresh(meeting)


class AgendaItemViewSet(viewsets.GenericViewSet):
    """Agenda items: the chair reorders and closes them."""

    serializer_class = s.AgendaItemSerializer

    def get_queryset(self):
        return AgendaItem.objects.filter(
            meeting__in=selectors.meetings(viewer=self.request.user)
        ).select_related("change_request")

    @extend_schema(
        request=s.AgendaMoveSerializer, responses={200: s.AgendaItemSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def move(self, request, pk=None):
        data = s.AgendaMoveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.agenda_item_move(
            item=self.get_object(), actor=request.user, position=data.validated_data["position"]
        )
        return _ok(s.AgendaItemSerializer, item)

    @extend_schema(
        request=s.AgendaCloseSerializer, responses={200: s.AgendaItemSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """Record the decision: by the quorum rule (a shortfall rejects) or needs-info."""
        data = s.AgendaCloseSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        item = services.agenda_item_close(
            item=self.get_object(), actor=request.user, **data.validated_data
        )
        return _ok(s.AgendaItemSerializer, item)


class FreezeWindowViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Freeze windows (one-off, RRULE or cron in a time zone), described in plain words."""

    serializer_class = s.FreezeWindowSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self):
        return selectors.freeze_windows(viewer=self.request.user)

    def list(self, request, *args, **kwargs):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        lifting = selectors.break_glass_lifting(page)
        data = s.FreezeWindowSerializer(page, many=True, context={"break_glass": lifting}).data
        return self.get_paginated_response(data)

    def create(self, request, *args, **kwargs):
        data = s.FreezeWindowSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        window = services.freeze_window_create(
            actor=request.user,
            environments=fields.pop("environments", []),
            services=fields.pop("services", []),
            **fields,
        )
        return _ok(s.FreezeWindowSerializer, window, status.HTTP_201_CREATED)

    def update(self, request, *args, **kwargs):
        data = s.FreezeWindowSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        window = services.freeze_window_update(
            window=self.get_object(), actor=request.user, changes=dict(data.validated_data)
        )
        return _ok(s.FreezeWindowSerializer, window)


class FreezeExceptionFilter(django_filters.FilterSet):
    release = IdFilter(field_name="release_id", help_text="Release id.")
    freeze = IdFilter(field_name="freeze_id", help_text="Freeze window id.")

    class Meta:
        model = FreezeException
        fields = ["release", "freeze", "state"]


class FreezeExceptionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    viewsets.GenericViewSet,
):
    """Freeze exceptions: requested by a release manager, decided by someone else."""

    serializer_class = s.FreezeExceptionSerializer
    filterset_class = FreezeExceptionFilter

    def get_queryset(self):
        return selectors.freeze_exceptions(viewer=self.request.user)

    def create(self, request, *args, **kwargs):
        data = s.FreezeExceptionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        release = get_object_or_404(
            visible_releases(viewer=request.user), pk=data.validated_data["release"].pk
        )
        exception = services.freeze_exception_request(
            freeze=data.validated_data["freeze"],
            release=release,
            actor=request.user,
            justification=data.validated_data["justification"],
            expires_at=data.validated_data.get("expires_at"),
        )
        return _ok(s.FreezeExceptionSerializer, exception, status.HTTP_201_CREATED)

    @extend_schema(
        request=s.CommentInputSerializer, responses={200: s.FreezeExceptionSerializer, **ERRORS}
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        data = s.CommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exception = services.freeze_exception_approve(
            exception=self.get_object(), actor=request.user, **data.validated_data
        )
        return _ok(s.FreezeExceptionSerializer, exception)

    @extend_schema(
        request=s.RequiredCommentInputSerializer,
        responses={200: s.FreezeExceptionSerializer, **ERRORS},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        data = s.RequiredCommentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        exception = services.freeze_exception_reject(
            exception=self.get_object(), actor=request.user, **data.validated_data
        )
        return _ok(s.FreezeExceptionSerializer, exception)


class ReleaseBlockersView(APIView):
    """Why is this release blocked? Every unmet requirement of its next transition, who can
    resolve it, and the earliest time it could proceed."""

    @extend_schema(responses={200: s.ReleaseBlockersSerializer})
    def get(self, request, pk: int):
        release = get_object_or_404(visible_releases(viewer=request.user), pk=pk)
        return Response(s.ReleaseBlockersSerializer(release_blockers(release)).data)


class ReleaseRiskView(APIView):
    """The explained risk assessment of a release; POST recomputes it."""

    @extend_schema(responses={200: s.RiskAssessmentSerializer})
    def get(self, request, pk: int):
        release = get_object_or_404(visible_releases(viewer=request.user), pk=pk)
        assessment = get_object_or_404(RiskAssessment, release=release)
        return _ok(s.RiskAssessmentSerializer, assessment)

    @extend_schema(
        request=s.RiskAssessInputSerializer, responses={200: s.RiskAssessmentSerializer, **ERRORS}
    )
    def post(self, request, pk: int):
        release = get_object_or_404(visible_releases(viewer=request.user), pk=pk)
        data = s.RiskAssessInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assessment = services.risk_assess(
            release=release,
            actor=request.user,
            data_migration=data.validated_data["data_migration"],
        )
        return _ok(s.RiskAssessmentSerializer, assessment)


class ReleaseRiskOverrideView(APIView):
    """Override a release's risk level with a justification (audited)."""

    @extend_schema(
        request=s.RiskOverrideInputSerializer,
        responses={200: s.RiskAssessmentSerializer, **ERRORS},
    )
    def post(self, request, pk: int):
        release = get_object_or_404(visible_releases(viewer=request.user), pk=pk)
        data = s.RiskOverrideInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        assessment = services.risk_override(
            release=release, actor=request.user, **data.validated_data
        )
        return _ok(s.RiskAssessmentSerializer, assessment)


# --- break-glass -------------------------------------------------------------------------------

BREAK_GLASS_ERRORS = {
    400: OpenApiResponse(
        s.GovernanceErrorSerializer,
        description="A reason too short, an expiry not in the future or beyond "
        "BREAK_GLASS_MAX_HOURS, a kind or environment not accepted (``errors`` per field).",
    ),
    403: OpenApiResponse(
        s.GovernanceErrorSerializer,
        description="Not a person holding a role the action needs, or the requester "
        "approving their own review (separation of duties).",
    ),
    404: OpenApiResponse(
        s.GovernanceErrorSerializer, description="No such release or break-glass, or not visible."
    ),
    409: OpenApiResponse(
        s.GovernanceErrorSerializer,
        description="A break-glass is already active for the release, the release is final, "
        "the break-glass is no longer active, or its review is already approved.",
    ),
}


class ReleaseBreakGlassListView(generics.ListAPIView):
    """A release's break-glass overrides of the freeze (GET), or break the glass (POST)."""

    serializer_class = s.BreakGlassSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's pass
            return BreakGlass.objects.none()
        get_object_or_404(visible_releases(viewer=self.request.user), pk=self.kwargs["pk"])
        return selectors.break_glasses(viewer=self.request.user, release=self.kwargs["pk"])

    @extend_schema(
        operation_id="releases_break_glass_list",
        summary="A release's break-glass overrides, newest first",
        tags=["break-glass"],
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        operation_id="releases_break_glass_create",
        summary="Break the glass: override the freeze for a rollback or a hotfix",
        description=(
            "Lifts the freeze blocker of the release's production deployments (only in "
            "``environment`` when given) until ``expires_at``, for the release page, the board, "
            "the transition and ``POST /api/v1/deployment-checks/`` alike. Requires a person "
            "holding one of BREAK_GLASS_ROLES, a reason and an expiry. Opens a mandatory "
            "post-implementation review that blocks closing the release until someone other "
            "than the requester approves it. Audited (``break_glass.create``)."
        ),
        request=s.BreakGlassInputSerializer,
        responses={201: s.BreakGlassSerializer, **BREAK_GLASS_ERRORS},
        tags=["break-glass"],
    )
    def post(self, request, pk: int):
        release = get_object_or_404(visible_releases(viewer=request.user), pk=pk)
        data = s.BreakGlassInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        glass = services.break_glass_create(
            release=release, actor=request.user, **data.validated_data
        )
        return _ok(s.BreakGlassSerializer, glass, status.HTTP_201_CREATED)


class _OneBreakGlass:
    def _glass(self, request, pk: int, glass_pk: int):
        return get_object_or_404(
            selectors.break_glasses(viewer=request.user, release=pk), pk=glass_pk
        )


class ReleaseBreakGlassDetailView(_OneBreakGlass, APIView):
    """One break-glass of a release."""

    @extend_schema(
        operation_id="releases_break_glass_retrieve",
        summary="One break-glass and its review",
        responses={200: s.BreakGlassSerializer},
        tags=["break-glass"],
    )
    def get(self, request, pk: int, glass_pk: int):
        return _ok(s.BreakGlassSerializer, self._glass(request, pk, glass_pk))


class ReleaseBreakGlassReviewView(_OneBreakGlass, APIView):
    """Approve the post-implementation review of a break-glass."""

    @extend_schema(
        operation_id="releases_break_glass_review",
        summary="Approve a break-glass's post-implementation review (not its requester)",
        description=(
            "Someone other than the requester, holding one of BREAK_GLASS_ROLES or the CAB "
            "chair role, approves the review with a note; the release may close again once "
            "every review is approved. Audited (``break_glass.review_approve``)."
        ),
        request=s.BreakGlassReviewInputSerializer,
        responses={200: s.BreakGlassSerializer, **BREAK_GLASS_ERRORS},
        tags=["break-glass"],
    )
    def post(self, request, pk: int, glass_pk: int):
        glass = self._glass(request, pk, glass_pk)
        data = s.BreakGlassReviewInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        glass = services.break_glass_review_approve(
            glass=glass, actor=request.user, note=data.validated_data["note"]
        )
        return _ok(s.BreakGlassSerializer, glass)


class ReleaseBreakGlassRevokeView(_OneBreakGlass, APIView):
    """Revoke a break-glass."""

    @extend_schema(
        operation_id="releases_break_glass_revoke",
        summary="Revoke a break-glass before its expiry (the freeze applies again)",
        description="The requester or a holder of BREAK_GLASS_ROLES, with a reason. The "
        "review stays owed. Audited (``break_glass.revoke``).",
        request=s.BreakGlassRevokeInputSerializer,
        responses={200: s.BreakGlassSerializer, **BREAK_GLASS_ERRORS},
        tags=["break-glass"],
    )
    def post(self, request, pk: int, glass_pk: int):
        glass = self._glass(request, pk, glass_pk)
        data = s.BreakGlassRevokeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        glass = services.break_glass_revoke(
            glass=glass, actor=request.user, reason=data.validated_data["reason"]
        )
        return _ok(s.BreakGlassSerializer, glass)
