from django.urls import path

from . import views

urlpatterns = [
    path("pipeline-runs/", views.PipelineRunIngestView.as_view(), name="pipeline-run-ingest"),
    path("deployments/", views.DeploymentIngestView.as_view(), name="deployment-ingest"),
]
