from django.conf import settings
from django.urls import path

from . import checks, views, webhooks

# Explicit routes rather than a router: the list URL's POST is the ingestion (upsert), so
# its name stays what it was, and ids are whole numbers (anything else is a 404).
LIST = {"get": "list", "post": "create"}
DETAIL = {"get": "retrieve"}

urlpatterns = [
    path("pipeline-runs/", views.PipelineRunViewSet.as_view(LIST), name="pipeline-run-ingest"),
    path(
        "pipeline-runs/<int:pk>/",
        views.PipelineRunViewSet.as_view(DETAIL),
        name="pipeline-run-detail",
    ),
    path("deployments/", views.DeploymentViewSet.as_view(LIST), name="deployment-ingest"),
    path(
        "deployments/<int:pk>/", views.DeploymentViewSet.as_view(DETAIL), name="deployment-detail"
    ),
    path(
        "deployment-checks/",
        checks.DeploymentCheckViewSet.as_view({"post": "create"}),
        name="deployment-check-create",
    ),
    path(
        "deployment-checks/<int:pk>/",
        checks.DeploymentCheckViewSet.as_view(DETAIL),
        name="deployment-check-detail",
    ),
    path("artefacts/", views.ArtefactViewSet.as_view({"get": "list"}), name="artefact-list"),
    path("artefacts/<int:pk>/", views.ArtefactViewSet.as_view(DETAIL), name="artefact-detail"),
    path("webhooks/github/", webhooks.GitHubWebhookView.as_view(), name="webhook-github"),
    path("webhooks/gitlab/", webhooks.GitLabWebhookView.as_view(), name="webhook-gitlab"),
    path("webhooks/jenkins/", webhooks.JenkinsWebhookView.as_view(), name="webhook-jenkins"),
    path(
        "webhooks/alertmanager/",
        webhooks.AlertmanagerWebhookView.as_view(),
        name="webhook-alertmanager",
    ),
    path("webhooks/cdevents/", webhooks.CDEventsWebhookView.as_view(), name="webhook-cdevents"),
]

if settings.RELEASEGATE_BENCHMARK_BASELINE:
    from .baseline import baseline_insert

    urlpatterns.append(path("_benchmark/baseline/", baseline_insert, name="benchmark-baseline"))
