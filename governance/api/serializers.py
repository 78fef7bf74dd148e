"""Governance serializers: output shapes and small input serializers. They never change
state; views pass validated input to a service."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.dates import in_date_range
from releases.choices import RiskLevel
from releases.models import Environment, Release, Service

from .. import selectors
from ..choices import AgendaOutcome, BreakGlassKind, ChangeType, FreezeKind, VoteChoice
from ..models import (
    AgendaItem,
    BreakGlass,
    CABMeeting,
    ChangeRequest,
    FreezeException,
    FreezeWindow,
    GateCheck,
    GatePolicy,
    RiskAssessment,
    Vote,
)

User = get_user_model()
Username = serializers.SlugRelatedField  # shorthand


class GatePolicySerializer(serializers.ModelSerializer):
    class Meta:
        model = GatePolicy
        fields = [
            "id",
            "name",
            "description",
            "version",
            "is_active",
            "priority",
            "release_types",
            "risk_levels",
            "change_request",
            "requirements",
            "updated_at",
        ]


class GateCheckSerializer(serializers.ModelSerializer):
    decided_by = Username(slug_field="username", read_only=True)
    run = serializers.PrimaryKeyRelatedField(read_only=True)
    waivable_by = serializers.ListField(child=serializers.CharField(), read_only=True)

    class Meta:
        model = GateCheck
        fields = [
            "id",
            "release",
            "key",
            "stage",
            "kind",
            "label",
            "role",
            "threshold",
            "status",
            "decided_by",
            "decided_at",
            "comment",
            "detail",
            "run",
            "commit_sha",
            "waivable_by",
            "policy_name",
            "policy_version",
            "pending_since",
        ]


class CommentInputSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class RequiredCommentInputSerializer(serializers.Serializer):
    comment = serializers.CharField()


class JustificationInputSerializer(serializers.Serializer):
    justification = serializers.CharField()


class ReasonInputSerializer(serializers.Serializer):
    reason = serializers.CharField()


class GovernanceErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(required=False)
    blockers = serializers.ListField(child=serializers.DictField(), required=False)


class VoteSerializer(serializers.ModelSerializer):
    voter = Username(slug_field="username", read_only=True)

    class Meta:
        model = Vote
        fields = ["id", "change_request", "voter", "choice", "comment", "roles", "updated_at"]


class VoteInputSerializer(serializers.Serializer):
    choice = serializers.ChoiceField(choices=VoteChoice.choices)
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class TallySerializer(serializers.Serializer):
    outcome = serializers.CharField()
    reasons = serializers.ListField(child=serializers.CharField())
    approves = serializers.IntegerField()
    rejects = serializers.IntegerField()
    abstains = serializers.IntegerField()
    quorum_met = serializers.BooleanField()
    share_met = serializers.BooleanField()
    missing_roles = serializers.ListField(child=serializers.CharField())


class ChangeRequestSerializer(serializers.ModelSerializer):
    requested_by = Username(slug_field="username", read_only=True)
    decided_by = Username(slug_field="username", read_only=True)
    review_overdue = serializers.BooleanField(read_only=True)

    class Meta:
        model = ChangeRequest
        fields = [
            "id",
            "number",
            "title",
            "change_type",
            "state",
            "release",
            "requested_by",
            "risk_level",
            "reason",
            "impact",
            "implementation_plan",
            "backout_plan",
            "test_plan",
            "window_start",
            "window_end",
            "decision_reasons",
            "decided_at",
            "decided_by",
            "submitted_at",
            "implemented_at",
            "review_due_at",
            "review_overdue",
            "reviewed_at",
            "review_notes",
            "closed_at",
            "created_at",
        ]
        read_only_fields = fields


class ChangeRequestWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    change_type = serializers.ChoiceField(choices=ChangeType.choices, default=ChangeType.NORMAL)
    release = serializers.PrimaryKeyRelatedField(
        queryset=Release.objects.all(), required=False, allow_null=True
    )
    risk_level = serializers.ChoiceField(choices=RiskLevel.choices, required=False)
    reason = serializers.CharField(required=False, allow_blank=True)
    impact = serializers.CharField(required=False, allow_blank=True)
    implementation_plan = serializers.CharField(required=False, allow_blank=True)
    backout_plan = serializers.CharField(required=False, allow_blank=True)
    test_plan = serializers.CharField(required=False, allow_blank=True)
    window_start = serializers.DateTimeField(
        required=False, allow_null=True, validators=[in_date_range]
    )
    window_end = serializers.DateTimeField(
        required=False, allow_null=True, validators=[in_date_range]
    )


class ReviewInputSerializer(serializers.Serializer):
    notes = serializers.CharField()


class AgendaItemSerializer(serializers.ModelSerializer):
    change_request = ChangeRequestSerializer(read_only=True)
    closed_by = Username(slug_field="username", read_only=True)

    class Meta:
        model = AgendaItem
        fields = [
            "id",
            "meeting",
            "position",
            "outcome",
            "closed_at",
            "closed_by",
            "change_request",
        ]


class CABMeetingSerializer(serializers.ModelSerializer):
    chair = Username(slug_field="username", read_only=True)
    attendees = Username(slug_field="username", many=True, read_only=True)
    items = AgendaItemSerializer(many=True, read_only=True)

    class Meta:
        model = CABMeeting
        fields = [
            "id",
            "title",
            "kind",
            "scheduled_at",
            "duration",
            "state",
            "chair",
            "attendees",
            "closed_at",
            "items",
        ]


class CABMeetingWriteSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=["regular", "emergency"], default="regular")
    scheduled_at = serializers.DateTimeField(validators=[in_date_range])


class AgendaAddSerializer(serializers.Serializer):
    change_request = serializers.PrimaryKeyRelatedField(queryset=ChangeRequest.objects.all())


class AgendaMoveSerializer(serializers.Serializer):
    position = serializers.IntegerField(min_value=1)


class AgendaCloseSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(
        choices=[("", "Decide by the quorum rule"), (AgendaOutcome.NEEDS_INFO, "Needs info")],
        required=False,
        default="",
    )
    comment = serializers.CharField(required=False, allow_blank=True, default="")


class FreezeBreakGlassSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    release = serializers.IntegerField()
    release_name = serializers.CharField()
    kind = serializers.ChoiceField(choices=BreakGlassKind.choices)
    environment = serializers.CharField(allow_null=True)
    requested_by = serializers.CharField()
    reason = serializers.CharField()
    expires_at = serializers.DateTimeField()


class FreezeWindowSerializer(serializers.ModelSerializer):
    environments = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Environment.objects.all(), required=False
    )
    services = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Service.objects.all(), required=False
    )
    description = serializers.CharField(read_only=True)
    kind = serializers.ChoiceField(choices=FreezeKind.choices)
    break_glass = serializers.SerializerMethodField(
        help_text="The break-glass overrides lifting this freeze now, each for one release."
    )

    class Meta:
        model = FreezeWindow
        fields = [
            "id",
            "name",
            "reason",
            "kind",
            "tz",
            "start",
            "end",
            "rrule",
            "cron",
            "duration",
            "end_time",
            "end_weekday",
            "environments",
            "services",
            "is_active",
            "description",
            "break_glass",
        ]
        extra_kwargs = {
            "start": {"validators": [in_date_range]},
            "end": {"validators": [in_date_range]},
        }

    @extend_schema_field(FreezeBreakGlassSerializer(many=True))
    def get_break_glass(self, window: FreezeWindow) -> list[dict]:
        lifting = self.context.get("break_glass")
        if lifting is None:  # one window (create, update): read for it alone
            lifting = selectors.break_glass_lifting([window])
        return lifting.get(window.pk, [])


class FreezeExceptionSerializer(serializers.ModelSerializer):
    requested_by = Username(slug_field="username", read_only=True)
    approver = Username(slug_field="username", read_only=True)

    class Meta:
        model = FreezeException
        fields = [
            "id",
            "freeze",
            "release",
            "justification",
            "state",
            "requested_by",
            "approver",
            "decided_at",
            "decision_comment",
            "expires_at",
            "created_at",
        ]
        read_only_fields = ["state", "requested_by", "approver", "decided_at", "decision_comment"]
        extra_kwargs = {"expires_at": {"required": False, "validators": [in_date_range]}}


class RiskAssessmentSerializer(serializers.ModelSerializer):
    level = serializers.CharField(read_only=True)
    overridden_by = Username(slug_field="username", read_only=True)

    class Meta:
        model = RiskAssessment
        fields = [
            "release",
            "score",
            "computed_level",
            "level",
            "factors",
            "inputs",
            "data_migration",
            "override_level",
            "override_justification",
            "overridden_by",
            "overridden_at",
            "assessed_at",
        ]


class RiskAssessInputSerializer(serializers.Serializer):
    data_migration = serializers.BooleanField(required=False, allow_null=True, default=None)


class RiskOverrideInputSerializer(serializers.Serializer):
    level = serializers.ChoiceField(choices=RiskLevel.choices)
    justification = serializers.CharField()


class BlockerSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    who_can_resolve = serializers.CharField()
    until = serializers.DateTimeField(allow_null=True)


class TransitionBlockersSerializer(serializers.Serializer):
    transition = serializers.CharField()
    ready = serializers.BooleanField()
    needs_action = serializers.BooleanField()
    earliest_at = serializers.DateTimeField(allow_null=True)
    blockers = BlockerSerializer(many=True)


class BreakGlassNoteSerializer(serializers.Serializer):
    """A break-glass where the freeze is shown: in force (``active``, the freezes it
    ``lifts`` now) or with its post-implementation review still owed. Never a blocker."""

    id = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=BreakGlassKind.choices)
    active = serializers.BooleanField()
    environment = serializers.CharField(allow_null=True, help_text="None: every production one.")
    reason = serializers.CharField()
    requested_by = serializers.CharField()
    expires_at = serializers.DateTimeField()
    state = serializers.CharField()
    review_state = serializers.CharField()
    lifts = serializers.ListField(child=serializers.CharField(), help_text="Freeze names.")
    message = serializers.CharField()


class ReleaseBlockersSerializer(serializers.Serializer):
    release = serializers.IntegerField()
    state = serializers.CharField()
    checked_at = serializers.DateTimeField()
    blocked = serializers.BooleanField()
    transitions = TransitionBlockersSerializer(many=True)
    break_glass = BreakGlassNoteSerializer(many=True)


class BreakGlassSerializer(serializers.ModelSerializer):
    """A break-glass and its post-implementation review."""

    environment = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    requested_by = Username(slug_field="username", read_only=True)
    ended_by = Username(slug_field="username", read_only=True)
    reviewed_by = Username(slug_field="username", read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = BreakGlass
        fields = [
            "id",
            "release",
            "environment",
            "kind",
            "reason",
            "expires_at",
            "state",
            "active",
            "requested_by",
            "created_at",
            "ended_at",
            "ended_by",
            "end_reason",
            "review_state",
            "reviewed_by",
            "reviewed_at",
            "review_note",
        ]
        read_only_fields = fields

    def get_active(self, glass: BreakGlass) -> bool:
        return glass.is_active_at(timezone.now())


class BreakGlassInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=BreakGlassKind.choices)
    reason = serializers.CharField(
        max_length=2000, help_text="Why the freeze must be broken (BREAK_GLASS_MIN_REASON_LENGTH)."
    )
    expires_at = serializers.DateTimeField(
        validators=[in_date_range], help_text="In the future, at most BREAK_GLASS_MAX_HOURS ahead."
    )
    environment = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Environment.objects.all(),
        required=False,
        allow_null=True,
        help_text="A production environment's slug; omitted: every production environment.",
    )


class BreakGlassReviewInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=5000, help_text="What happened and what follows.")


class BreakGlassRevokeInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
