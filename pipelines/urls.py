from django.urls import path

from . import views, worker_views

app_name = "pipelines"
urlpatterns: list = [
    path("releases/<int:pk>/delivery/", views.release_delivery_panel, name="release_delivery"),
    # workers: integration health, notifications, verification panel
    path("integrations/", worker_views.integrations, name="integrations"),
    path("notifications/", worker_views.notification_list, name="notifications"),
    path("notifications/read/", worker_views.notification_mark_read, name="notifications_read"),
    path(
        "notifications/preferences/",
        worker_views.notification_preferences,
        name="notification_preferences",
    ),
    path(
        "releases/<int:pk>/verification/",
        worker_views.verification_panel,
        name="verification_panel",
    ),
]
