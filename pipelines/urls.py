from django.urls import path

from . import views

app_name = "pipelines"
urlpatterns: list = [
    path("releases/<int:pk>/delivery/", views.release_delivery_panel, name="release_delivery"),
    # workers: integration health, notifications, verification panel
    path("integrations/", views.integrations, name="integrations"),
    path("tokens/", views.api_tokens, name="tokens"),
    path("tokens/<int:pk>/revoke/", views.api_token_revoke, name="token_revoke"),
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/read/", views.notification_mark_read, name="notifications_read"),
    path(
        "notifications/preferences/",
        views.notification_preferences,
        name="notification_preferences",
    ),
    path(
        "releases/<int:pk>/verification/",
        views.verification_panel,
        name="verification_panel",
    ),
]
