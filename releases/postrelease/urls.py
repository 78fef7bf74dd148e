from django.urls import path

from . import views

app_name = "postrelease"
urlpatterns = [
    path("actions/", views.actions, name="actions"),
    path("lessons/", views.lessons, name="lessons"),
    path("releases/<int:pk>/post-release/", views.page, name="page"),
    path("releases/<int:pk>/post-release/validation/", views.validation_add, name="validation_add"),
    path(
        "releases/<int:pk>/post-release/validation/<int:item_pk>/done/",
        views.validation_complete,
        name="validation_complete",
    ),
    path(
        "releases/<int:pk>/post-release/retrospective/", views.retrospective, name="retrospective"
    ),
    path("releases/<int:pk>/post-release/actions/", views.action_add, name="action_add"),
    path(
        "releases/<int:pk>/post-release/actions/<int:item_pk>/status/",
        views.action_status,
        name="action_status",
    ),
    path("releases/<int:pk>/post-release/impact/", views.impact, name="impact"),
    path(
        "releases/<int:pk>/post-release/notes/<slug:audience>/",
        views.notes_save,
        name="notes_save",
    ),
    path(
        "releases/<int:pk>/post-release/notes/<slug:audience>/publish/",
        views.notes_publish,
        name="notes_publish",
    ),
    path(
        "releases/<int:pk>/post-release/notes/<slug:audience>/preview/",
        views.notes_preview,
        name="notes_preview",
    ),
    path(
        "releases/<int:pk>/post-release/communications/",
        views.communication_add,
        name="communication_add",
    ),
    path(
        "releases/<int:pk>/post-release/communications/<int:comm_pk>/cancel/",
        views.communication_cancel,
        name="communication_cancel",
    ),
    path("releases/<int:pk>/evidence/", views.evidence_capture, name="evidence_capture"),
    path(
        "releases/<int:pk>/evidence/<int:pack_pk>.zip",
        views.evidence_download,
        name="evidence_download",
    ),
]
