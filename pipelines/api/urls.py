from django.conf import settings
from django.urls import path

from . import views, webhooks

urlpatterns = [
    path("pipeline-runs/", views.PipelineRunIngestView.as_view(), name="pipeline-run-ingest"),
    path("deployments/", views.DeploymentIngestView.as_view(), name="deployment-ingest"),
    path("webhooks/github/", webhooks.GitHubWebhookView.as_view(), name="webhook-github"),
    path("webhooks/gitlab/", webhooks.GitLabWebhookView.as_view(), name="webhook-gitlab"),
    path("webhooks/jenkins/", webhooks.JenkinsWebhookView.as_view(), name="webhook-jenkins"),
    path(
        "webhooks/alertmanager/",
        webhooks.AlertmanagerWebhookView.as_view(),
        name="webhook-alertmanager",
    ),
]

if settings.RELEASEGATE_BENCHMARK_BASELINE:
    from .baseline import baseline_insert

    urlpatterns.append(path("_benchmark/baseline/", baseline_insert, name="benchmark-baseline"))
