"""Dashboards API, included under /api/v1/ by config/urls.py."""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_view

from .views import CalendarEventsView, DoraMetricsView


@extend_schema_view(get=extend_schema(exclude=True))
class DoraMetricsSlashView(DoraMetricsView):
    """The same endpoint with a trailing slash, kept out of the schema (one operation)."""


urlpatterns = [
    path("metrics/dora", DoraMetricsView.as_view(), name="metrics-dora"),
    path("metrics/dora/", DoraMetricsSlashView.as_view()),
    path("calendar/events/", CalendarEventsView.as_view(), name="calendar-events"),
]
