"""Machine access (API tokens), pipeline runs with their checks and artefacts, webhook
integrations and their deliveries, and incidents raised by monitoring on deployments."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone


class TokenScope(models.TextChoices):
    RUNS_WRITE = "runs:write", "Post pipeline runs"
    DEPLOYMENTS_WRITE = "deployments:write", "Report deployments"
    RELEASES_READ = "releases:read", "Read releases"
    RELEASES_WRITE = "releases:write", "Create, edit and transition releases"
    DEPLOYMENTS_CHECK = "deployments:check", "Ask whether a deployment may proceed"


TOKEN_PREFIX = "rg_"


def hash_token(raw: str) -> str:
    # Tokens are 256-bit random strings, so a fast unsalted hash is safe here and lets the
    # lookup be one indexed equality (a slow KDF would only cost every API request).
    return hashlib.sha256(raw.encode()).hexdigest()


class ApiTokenQuerySet(models.QuerySet):
    def active(self):
        return self.filter(revoked_at__isnull=True)


class ApiToken(models.Model):
    """A bearer token for a CI/CD system, scoped to services and actions.

    Only its SHA-256 is stored; the raw value is shown once at creation.
    """

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_hint = models.CharField(max_length=12, editable=False, help_text="First characters.")
    services = models.ManyToManyField("releases.Service", related_name="api_tokens", blank=True)
    scopes = models.JSONField(default=list, help_text="Actions this token may perform.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @staticmethod
    def generate_raw() -> str:
        return TOKEN_PREFIX + secrets.token_urlsafe(32)

    def has_scope(self, scope: str) -> bool:
        return scope in (self.scopes or [])


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINISHED_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})


class Provider(models.TextChoices):
    GITHUB_ACTIONS = "github_actions", "GitHub Actions"
    GITLAB = "gitlab", "GitLab CI"
    JENKINS = "jenkins", "Jenkins"
    GENERIC = "generic", "Other CI"
    CDEVENTS = "cdevents", "CDEvents"


class CheckKind(models.TextChoices):
    TESTS = "tests", "Tests"
    SECURITY_SCAN = "security_scan", "Security scan"
    COVERAGE = "coverage", "Coverage"
    PERFORMANCE = "performance", "Performance"
    LINT = "lint", "Lint"
    CUSTOM = "custom", "Custom"


class CheckStatus(models.TextChoices):
    PASSED = "passed", "Passed"
    FAILED = "failed", "Failed"
    SKIPPED = "skipped", "Skipped"
    RUNNING = "running", "Running"


class PipelineRun(models.Model):
    """One CI run (one attempt) of a service's pipeline, as reported by CI or polled.

    Unique on (provider, external_id, attempt): posting the same run again updates it.
    """

    service = models.ForeignKey(
        "releases.Service", on_delete=models.PROTECT, related_name="pipeline_runs"
    )
    provider = models.CharField(max_length=20, choices=Provider.choices)
    external_id = models.CharField(max_length=200)
    attempt = models.PositiveIntegerField(default=1)
    status = models.CharField(max_length=10, choices=RunStatus.choices)
    commit_sha = models.CharField(max_length=64, blank=True, db_index=True)
    ref = models.CharField(max_length=255, blank=True)
    version = models.CharField(max_length=64, blank=True)
    url = models.URLField(max_length=500, blank=True)
    name = models.CharField(max_length=200, blank=True)
    repository = models.CharField(max_length=255, blank=True)
    raw_status = models.CharField(
        max_length=60, blank=True, help_text="The provider's own words for the status."
    )
    waiting_approval = models.BooleanField(default=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # SHA-256 of the last accepted report (normalised): the same body again is recognised
    # with one read and changes nothing.
    report_hash = models.CharField(max_length=64, blank=True, editable=False)
    # Who reported the run (its first report). The creation of a machine-reported fact is not
    # an audit event (see pipelines.services.pipeline_run_upsert); its provenance is here.
    reported_by_token = models.ForeignKey(
        ApiToken, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reported_by_integration = models.ForeignKey(
        "Integration", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # Set by an accepted change of a run that concerns an open release, cleared once the
    # automated gates were re-evaluated for it: the durable half of the gate dispatch (a sweep
    # re-queues what a crash dropped). No index holds it, so clearing it is a HOT update
    # (docs/workers.md, "Gate evaluation").
    gates_pending = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "external_id", "attempt"], name="pipeline_run_unique_attempt"
            )
        ]
        indexes = [
            models.Index(fields=["service", "version"]),
            # The API lists runs newest first (``ordering``), all of them or one service's:
            # a page is a walk down one of these instead of a sort of every run.
            models.Index(fields=["-created_at", "-id"], name="pipeline_run_newest"),
            models.Index(
                fields=["service", "-created_at", "-id"], name="pipeline_run_service_newest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} #{self.external_id}.{self.attempt} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_RUN_STATUSES


class PipelineCheck(models.Model):
    """A check reported inside a run (tests, security scan, coverage…); one per kind+name."""

    run = models.ForeignKey(PipelineRun, on_delete=models.CASCADE, related_name="checks")
    kind = models.CharField(max_length=20, choices=CheckKind.choices)
    name = models.CharField(max_length=100, blank=True)
    status = models.CharField(max_length=10, choices=CheckStatus.choices)
    metrics = models.JSONField(
        default=dict, blank=True, help_text="passed/failed/skipped, critical/high, percent…"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["run", "kind", "name"], name="pipeline_check_unique")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.status}"


class Artefact(models.Model):
    """An immutable build output, one per (service, name, digest). The versions and tags that
    name it are ``ArtefactTag`` rows: the same digest under a new version (an rc promoted, an
    image tagged twice) is one more tag, never a second artefact. ``version`` is the one it
    was first reported under."""

    service = models.ForeignKey(
        "releases.Service", on_delete=models.PROTECT, related_name="artefacts"
    )
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=64)
    digest = models.CharField(max_length=100)
    uri = models.CharField(max_length=500, blank=True)
    first_run = models.ForeignKey(
        PipelineRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="artefacts"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name", "digest"], name="artefact_unique_digest"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.version} ({self.digest[:19]})"


class ArtefactTag(models.Model):
    """A version or tag naming an artefact, with its first report: when, by which run, by
    whom. Unique per (service, name, version): once bound to a digest it never moves to
    another (the ingest refuses that with a 409, audited). ``service`` and ``name`` repeat
    the artefact's so that the database enforces it."""

    artefact = models.ForeignKey(Artefact, on_delete=models.CASCADE, related_name="tags")
    service = models.ForeignKey("releases.Service", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=200)
    version = models.CharField(max_length=64)
    uri = models.CharField(max_length=500, blank=True)
    run = models.ForeignKey(
        PipelineRun,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="artefact_tags",
        help_text="The run that first reported this version.",
    )
    reported_by = models.CharField(
        max_length=120, blank=True, help_text="Who first reported it (token:…, integration:…)."
    )
    created_at = models.DateTimeField(default=timezone.now, help_text="First reported at.")

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["service", "name", "version"], name="artefact_tag_unique_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"


class IntegrationProvider(models.TextChoices):
    GITHUB = "github", "GitHub Actions"
    GITLAB = "gitlab", "GitLab CI"
    JENKINS = "jenkins", "Jenkins"
    ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
    CDEVENTS = "cdevents", "CDEvents (CloudEvents over HTTP)"


DEFAULT_API_URLS = {
    IntegrationProvider.GITHUB: "https://api.github.com",
    IntegrationProvider.GITLAB: "https://gitlab.com/api/v4",
}


class Integration(models.Model):
    """A configured webhook sender (a GitHub App/repository hook, a GitLab project hook, a
    Jenkins instance, an Alertmanager receiver) allowed to report for some services.

    Deliveries are verified with one of its active secrets and mapped onto its services.
    """

    provider = models.CharField(max_length=20, choices=IntegrationProvider.choices)
    name = models.CharField(max_length=100, unique=True)
    services = models.ManyToManyField("releases.Service", related_name="integrations")
    enabled = models.BooleanField(default=True)
    # Outbound: where Releasegate answers (deployment protection rules, GitLab deployment
    # approvals) and publishes commit statuses. Blank means the provider's cloud API
    # (``api_base_url``); GitHub Enterprise Server is https://HOST/api/v3.
    api_url = models.URLField(
        max_length=300,
        blank=True,
        help_text="API base URL; blank = https://api.github.com or https://gitlab.com/api/v4.",
    )
    # Write-only (the admin never renders it back, the audit trail and logs name only its
    # hint, no API returns it). In clear for the same reason as webhook secrets: it is sent.
    api_token = models.CharField(max_length=300, blank=True)
    api_token_hint = models.CharField(max_length=12, blank=True, editable=False)
    # A GitHub App instead of a stored token: its id and private key (PEM, write-only) mint
    # an installation token per call (cached until shortly before it expires). The
    # installation is the delivery's ``installation.id``, else this one (commit statuses).
    github_app_id = models.CharField(max_length=20, blank=True)
    github_app_private_key = models.TextField(blank=True)
    github_app_installation_id = models.CharField(max_length=20, blank=True)
    gate_timeout_minutes = models.PositiveIntegerField(
        default=60,
        help_text="How long a deployment waiting at a gate (GitHub protection rule, GitLab "
        "approval) may wait for allow before it is rejected (fail closed).",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["provider", "name"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()}: {self.name}"

    def save(self, *args, **kwargs):
        self.api_token_hint = self.api_token[:4] if self.api_token else ""
        super().save(*args, **kwargs)

    @property
    def api_base_url(self) -> str:
        """The API root outbound calls go to, without a trailing slash."""
        if self.api_url:
            return self.api_url.rstrip("/")
        return DEFAULT_API_URLS.get(self.provider, "")

    @property
    def is_github_app(self) -> bool:
        return bool(
            self.provider == IntegrationProvider.GITHUB
            and self.github_app_id
            and self.github_app_private_key
        )

    @property
    def can_call_api(self) -> bool:
        return bool(self.enabled and (self.api_token or self.is_github_app) and self.api_base_url)


class IntegrationSecret(models.Model):
    """A shared secret of an integration. Several may be active at once so a secret can be
    rotated with an overlap: add the new one, switch the sender, then revoke the old one.

    Stored in clear on purpose: verifying GitHub's HMAC needs the raw key (a hash of the
    secret cannot sign), and GitLab/Jenkins tokens are compared the same way. The database
    (and its backups) must therefore be protected like the senders' own configuration.
    """

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="secrets")
    secret = models.CharField(max_length=200)
    hint = models.CharField(max_length=12, editable=False, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.integration.name} secret {self.hint}…"

    def save(self, *args, **kwargs):
        self.hint = self.secret[:4]
        super().save(*args, **kwargs)


class WebhookDelivery(models.Model):
    """One accepted webhook delivery, unique per provider and delivery id, so a delivery
    GitHub retries (or sends twice) is processed once."""

    provider = models.CharField(max_length=20, choices=IntegrationProvider.choices)
    delivery_id = models.CharField(max_length=200)
    integration = models.ForeignKey(
        Integration, on_delete=models.SET_NULL, null=True, related_name="deliveries"
    )
    event = models.CharField(max_length=50, blank=True)
    run = models.ForeignKey(
        PipelineRun, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    received_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "delivery_id"], name="webhook_delivery_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.provider} delivery {self.delivery_id}"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    RESOLVED = "resolved", "Resolved"


class Incident(models.Model):
    """A monitoring alert that fired during or after a production deployment, opened on that
    deployment; it feeds change failure rate and time to restore.

    One per alert occurrence: unique on (fingerprint, started_at)."""

    deployment = models.ForeignKey(
        "releases.Deployment", on_delete=models.CASCADE, related_name="incidents"
    )
    service = models.ForeignKey("releases.Service", on_delete=models.PROTECT, related_name="+")
    fingerprint = models.CharField(max_length=64)
    alertname = models.CharField(max_length=200, blank=True)
    summary = models.CharField(max_length=500, blank=True)
    url = models.CharField(max_length=500, blank=True)
    status = models.CharField(
        max_length=10, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["fingerprint", "started_at"], name="incident_unique_occurrence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.alertname or self.fingerprint} on {self.deployment}"
