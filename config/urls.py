from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz, readyz


@require_GET
def favicon(request):
    # Resolved per request: the hashed name exists only after collectstatic in production.
    return HttpResponsePermanentRedirect(static("favicon.svg"))


api_v1 = [
    path("", include("releases.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("pipelines.api.urls")),
    path("", include("dashboards.api.urls")),
]

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin, error pages).
    path("favicon.ico", favicon),
    path("readyz/", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path(
        "accounts/password/change/",
        auth_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("governance/", include("governance.urls")),
    path("pipelines/", include("pipelines.urls")),
    path("dashboards/", include("dashboards.urls")),
    path("", include("releases.postrelease.urls")),
    path("", include("releases.urls")),
]

handler404 = "config.api.page_not_found"
handler500 = "config.api.server_error"
