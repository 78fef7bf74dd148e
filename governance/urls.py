from django.urls import path

from . import views

app_name = "governance"
urlpatterns = [
    path("inbox/", views.inbox, name="inbox"),
    path("gates/<int:pk>/decide/", views.gate_decide, name="gate_decide"),
    path("gates/<int:pk>/reset/", views.gate_reset, name="gate_reset"),
    path("change-requests/<int:pk>/vote/", views.vote, name="vote"),
    path("change-requests/<int:pk>/review/", views.review, name="review"),
    path(
        "freeze-exceptions/<int:pk>/<str:decision>/",
        views.exception_decide,
        name="exception_decide",
    ),
    path("cab/", views.cab_workbench, name="cab"),
    path("cab/meetings/", views.meeting_create, name="meeting_create"),
    path("cab/meetings/<int:pk>/", views.meeting_page, name="meeting"),
    path(
        "cab/meetings/<int:pk>/attendees/<int:user_pk>/",
        views.meeting_attendance,
        name="meeting_attendance",
    ),
    path("cab/meetings/<int:pk>/<str:name>/", views.meeting_action, name="meeting_action"),
    path("cab/items/<int:pk>/", views.cab_item, name="cab_item"),
    path("cab/items/<int:pk>/<str:name>/", views.agenda_item_action, name="agenda_item_action"),
    path("releases/<int:pk>/panel/", views.release_panel, name="release_panel"),
    path(
        "releases/<int:pk>/risk-override/",
        views.release_risk_override,
        name="release_risk_override",
    ),
    path(
        "releases/<int:pk>/freeze-exception/",
        views.release_exception_request,
        name="release_exception_request",
    ),
    path("releases/<int:pk>/break-glass/", views.release_break_glass, name="release_break_glass"),
    path(
        "releases/<int:pk>/break-glass/<int:glass_pk>/review/",
        views.release_break_glass_review,
        name="release_break_glass_review",
    ),
    path(
        "releases/<int:pk>/break-glass/<int:glass_pk>/revoke/",
        views.release_break_glass_revoke,
        name="release_break_glass_revoke",
    ),
]
