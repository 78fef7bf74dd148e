from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz, readyz

api_v1 = [
    path("", include("releases.api.urls")),
    path("", include("governance.api.urls")),
    path("", include("pipelines.api.urls")),
    path("", include("dashboards.api.urls")),
]

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    path("readyz/", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("governance/", include("governance.urls")),
    path("pipelines/", include("pipelines.urls")),
    path("dashboards/", include("dashboards.urls")),
    path("", include("releases.postrelease.urls")),
    path("", include("releases.urls")),
]
