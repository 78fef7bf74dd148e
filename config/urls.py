from allauth.account import views as allauth_account
from allauth.socialaccount import views as allauth_social
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpResponsePermanentRedirect
from django.templatetags.static import static
from django.urls import include, path
from django.views.decorators.http import require_GET
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from config.health import healthz, readyz
from core import views as account_views


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

# The account pages. allauth's views are mounted one by one, not allauth.urls, so its local
# sign-up, e-mail management and second password-reset flow do not exist here. The allauth
# names its flows reverse (account_login, account_logout, …) point at these same pages.
accounts = [
    path("login/", account_views.LoginView.as_view(), name="login"),
    path("login/", account_views.LoginView.as_view(), name="account_login"),
    path("login/", account_views.LoginView.as_view(), name="account_signup"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("logout/", auth_views.LogoutView.as_view(), name="account_logout"),
    path(
        "password/change/",
        account_views.PasswordChangeView.as_view(),
        name="password_change",
    ),
    path(
        "password/change/",
        account_views.PasswordChangeView.as_view(),
        name="account_change_password",
    ),
    path(
        "password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("password/reset/", account_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "password/reset/",
        account_views.PasswordResetView.as_view(),
        name="account_reset_password",
    ),
    path(
        "password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "password/reset/<uidb64>/<token>/",
        account_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("reauthenticate/", allauth_account.reauthenticate, name="account_reauthenticate"),
    path("inactive/", allauth_account.account_inactive, name="account_inactive"),
    # Single sign-on: /accounts/oidc/<provider id>/login/ and …/login/callback/.
    path("", include("allauth.socialaccount.providers.openid_connect.urls")),
    path(
        "sso/cancelled/",
        allauth_social.login_cancelled,
        name="socialaccount_login_cancelled",
    ),
    path("sso/error/", allauth_social.login_error, name="socialaccount_login_error"),
    path("sso/signup/", allauth_social.signup, name="socialaccount_signup"),
    # Two-factor authentication: TOTP, security keys (WebAuthn), recovery codes.
    path("2fa/", include("allauth.mfa.urls")),
]

urlpatterns = [
    path("healthz/", healthz, name="healthz"),
    # Browsers ask for /favicon.ico on pages without an icon link (the admin, error pages).
    path("favicon.ico", favicon),
    path("readyz/", readyz, name="readyz"),
    # Before the admin's own: the admin signs in on the login page (SSO, MFA, lockout).
    path("admin/login/", account_views.AdminLoginView.as_view(), name="admin_login"),
    path("admin/", admin.site.urls),
    path("accounts/", include(accounts)),
    path("", include("core.urls")),
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
