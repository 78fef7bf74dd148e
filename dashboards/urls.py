"""Dashboards pages: /dashboards/calendar/, /dashboards/board/, /dashboards/metrics/."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "dashboards"
urlpatterns = [
    path("calendar/", views.calendar_page, name="calendar"),
    path("calendar/download.ics", views.calendar_download, name="calendar_download"),
    path("calendar/feed/regenerate/", views.calendar_feed_regenerate, name="calendar_regenerate"),
    path("calendar/feed/<str:token>.ics", views.calendar_feed, name="calendar_feed"),
    path("board/", views.board_page, name="board"),
    path("board/<int:pk>/move/", views.board_move, name="board_move"),
    path("board/<int:pk>/moves/", views.board_moves_page, name="board_moves"),
    path("metrics/", views.metrics_page, name="metrics"),
]
