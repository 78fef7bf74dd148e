"""Dashboards API, included under /api/v1/ by config/urls.py."""

from __future__ import annotations

from django.urls import path

from .views import CalendarEventsView, DoraMetricsView

urlpatterns = [
    path("metrics/dora", DoraMetricsView.as_view(), name="metrics-dora"),
    path("metrics/dora/", DoraMetricsView.as_view()),
    path("calendar/events/", CalendarEventsView.as_view(), name="calendar-events"),
]
