from __future__ import annotations

from django.contrib.auth import get_user_model
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.dates import in_date_range
from core.models import AuditEvent

from ..choices import ReleaseState, RiskLevel
from ..models import Release, ReleaseRisk, RollbackPlan, ScopeItem, Service
from ..risk import governing_level
from ..services import available_transitions

User = get_user_model()


class ScopeItemSerializer(serializers.ModelSerializer):
    class Meta:
        model = ScopeItem
        fields = ["id", "kind", "external_key", "title", "url", "status"]


class ReleaseRiskSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ReleaseRisk
        fields = ["id", "description", "likelihood", "impact", "mitigation", "owner", "status"]


class RollbackPlanSerializer(serializers.ModelSerializer):
    class Meta:
        model = RollbackPlan
        fields = ["steps", "rehearsed_at", "evidence_url", "updated_at"]


DECLARED_RISK_HELP = (
    "The risk level the release manager declared (set on create and update). Governance "
    "may use another, a higher computed level or an override: see governing_risk_level."
)
GOVERNING_RISK_HELP = (
    "The risk level governance uses for gates, CAB and closing, as the web pages show it: "
    "the override when the assessment has one (even below the declared level), else the "
    "higher of the computed and the declared level; the declared level before any assessment."
)


class ReleaseListSerializer(serializers.ModelSerializer):
    owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    services = serializers.SlugRelatedField(slug_field="slug", many=True, read_only=True)
    governing_risk_level = serializers.SerializerMethodField(help_text=GOVERNING_RISK_HELP)

    class Meta:
        model = Release
        fields = [
            "id",
            "name",
            "version",
            "release_type",
            "risk_level",
            "governing_risk_level",
            "state",
            "owner",
            "services",
            "window_start",
            "window_end",
            "code_freeze_at",
            "target_date",
            "updated_at",
        ]
        extra_kwargs = {"risk_level": {"help_text": DECLARED_RISK_HELP}}

    @extend_schema_field(serializers.ChoiceField(choices=RiskLevel.choices))
    def get_governing_risk_level(self, release) -> str:
        # The querysets behind this serializer read what the level needs (with_risk).
        return governing_level(release)


class ReleaseDetailSerializer(ReleaseListSerializer):
    product_owner = serializers.SlugRelatedField(slug_field="username", read_only=True)
    scope_items = ScopeItemSerializer(many=True, read_only=True)
    risks = ReleaseRiskSerializer(many=True, read_only=True)
    rollback_plan = RollbackPlanSerializer(read_only=True)
    available_transitions = serializers.SerializerMethodField()

    class Meta(ReleaseListSerializer.Meta):
        fields = [
            *ReleaseListSerializer.Meta.fields,
            "product_owner",
            "description",
            "release_notes",
            "scope_items",
            "risks",
            "rollback_plan",
            "planned_at",
            "approved_at",
            "deployed_at",
            "closed_at",
            "available_transitions",
        ]

    def get_available_transitions(self, release) -> list[str]:
        return available_transitions(release=release, actor=self.context["request"].user)


class ReleaseWriteSerializer(serializers.Serializer):
    """Input for create and partial update; the service does the writing."""

    name = serializers.CharField(max_length=200)
    version = serializers.CharField(max_length=64)
    release_type = serializers.ChoiceField(choices=Release._meta.get_field("release_type").choices)
    risk_level = serializers.ChoiceField(
        choices=Release._meta.get_field("risk_level").choices,
        required=False,
        help_text=DECLARED_RISK_HELP,
    )
    services = serializers.SlugRelatedField(
        slug_field="slug", many=True, queryset=Service.objects.all()
    )
    owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False, allow_null=True
    )
    product_owner = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.all(), required=False, allow_null=True
    )
    window_start = serializers.DateTimeField(
        required=False, allow_null=True, validators=[in_date_range]
    )
    window_end = serializers.DateTimeField(
        required=False, allow_null=True, validators=[in_date_range]
    )
    code_freeze_at = serializers.DateTimeField(
        required=False, allow_null=True, validators=[in_date_range]
    )
    target_date = serializers.DateField(required=False, allow_null=True, validators=[in_date_range])
    description = serializers.CharField(required=False, allow_blank=True, max_length=20000)
    release_notes = serializers.CharField(required=False, allow_blank=True, max_length=100000)

    def validate(self, attrs):
        start, end = attrs.get("window_start"), attrs.get("window_end")
        if start and end and end <= start:
            raise serializers.ValidationError({"window_end": "Must be after the window start."})
        return attrs


class TransitionInputSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=5000)


class TransitionErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
    code = serializers.CharField()
    blockers = serializers.ListField(child=serializers.DictField(), required=False)


class AuditEventSerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label")
    target_type = serializers.CharField(source="target_type.model")

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "from_state",
            "to_state",
            "reason",
            "before",
            "after",
            "ip_address",
            "user_agent",
        ]


STATE_CHOICES = ReleaseState.choices
