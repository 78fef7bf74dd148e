"""Release pages. Every URL under releases/<pk>/ answers 404 for a release the user may
not see."""

from __future__ import annotations

from django.urls import path

from . import views

app_name = "releases"
urlpatterns = [
    path("", views.release_list, name="list"),
    path("releases/new/", views.release_create, name="create"),
    path("releases/<int:pk>/", views.release_detail, name="detail"),
    path("releases/<int:pk>/edit/", views.release_edit, name="edit"),
    path(
        "releases/<int:pk>/transitions/<slug:name>/",
        views.release_transition,
        name="transition",
    ),
    path("releases/<int:pk>/scope/", views.scope_add, name="scope_add"),
    path("releases/<int:pk>/scope/<int:item_pk>/", views.scope_edit, name="scope_edit"),
    path(
        "releases/<int:pk>/scope/<int:item_pk>/status/",
        views.scope_status,
        name="scope_status",
    ),
    path(
        "releases/<int:pk>/scope/<int:item_pk>/remove/",
        views.scope_remove,
        name="scope_remove",
    ),
    path("releases/<int:pk>/risks/", views.risk_add, name="risk_add"),
    path("releases/<int:pk>/risks/<int:risk_pk>/", views.risk_edit, name="risk_edit"),
    path("releases/<int:pk>/rollback-plan/", views.rollback_set, name="rollback_set"),
    path(
        "releases/<int:pk>/audit.csv",
        views.audit_export,
        {"fmt": "csv"},
        name="audit_csv",
    ),
    path(
        "releases/<int:pk>/audit.json",
        views.audit_export,
        {"fmt": "json"},
        name="audit_json",
    ),
]
