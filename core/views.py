"""Account pages: the login page (local password and single sign-on), and the password pages
that LOCAL_PASSWORDS_ENABLED=false switches off. Imports no project app.

A password login goes through allauth's login flow (``perform_login``), not straight to
Django's ``login()``: that flow runs the MFA stage, so a user with an authenticator is asked
for the second factor whichever way they sign in.
"""

from __future__ import annotations

from allauth.account.internal.flows.login import record_authentication
from allauth.account.utils import perform_login
from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.db import transaction
from django.shortcuts import render

from .audit import audit_record
from .sso import sso_providers

LOCAL_OFF_MESSAGE = "Signing in with a local password is switched off. Use single sign-on instead."


class LocalLoginForm(AuthenticationForm):
    """Django's login form; with local passwords off it accepts superusers only (break-glass)
    and refuses everyone else before any password is checked."""

    def clean(self):
        if not settings.LOCAL_PASSWORDS_ENABLED:
            # One message for every refusal, so it does not tell who is a superuser.
            self.error_messages = {**self.error_messages, "invalid_login": LOCAL_OFF_MESSAGE}
            username = self.cleaned_data.get("username")
            is_superuser = (
                get_user_model()
                .objects.filter(username=username, is_superuser=True, is_active=True)
                .exists()
            )
            if not is_superuser:
                raise forms.ValidationError(LOCAL_OFF_MESSAGE, code="local_passwords_off")
        return super().clean()


class LoginView(auth_views.LoginView):
    """``/accounts/login/`` (the admin's login too): "Sign in with <IdP>" buttons and, unless
    switched off, the local username and password form."""

    form_class = LocalLoginForm

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        break_glass = self.request.GET.get("break-glass") == "1" or self.request.method == "POST"
        context["sso_providers"] = sso_providers(self.request)
        context["local_passwords"] = settings.LOCAL_PASSWORDS_ENABLED
        context["show_password_form"] = settings.LOCAL_PASSWORDS_ENABLED or break_glass
        return context

    def form_valid(self, form):
        user = form.get_user()
        if not settings.LOCAL_PASSWORDS_ENABLED:
            # Break-glass: a superuser while SSO is the only way in. Always on the record.
            with transaction.atomic():
                audit_record(
                    actor=user,
                    action="account.break_glass_login",
                    target=user,
                    reason="local password login while LOCAL_PASSWORDS_ENABLED is false",
                )
        # The password was typed just now: as good as allauth's re-authentication, so a user
        # sent to enrol MFA right after signing in is not asked for it again.
        record_authentication(
            self.request, user, method="password", username=user.username, reauthenticated=True
        )
        return perform_login(self.request, user, redirect_url=self.get_success_url())


def _local_passwords_off(request):
    return render(
        request,
        "registration/local_passwords_off.html",
        {"sso_providers": sso_providers(request)},
        status=403,
    )


class PasswordGuardMixin:
    """Password pages answer 403 while local passwords are off; ``superusers_may`` keeps a
    page open to a signed-in superuser (changing the break-glass password)."""

    superusers_may = False

    def dispatch(self, request, *args, **kwargs):
        if not settings.LOCAL_PASSWORDS_ENABLED and not (
            self.superusers_may and request.user.is_superuser
        ):
            return _local_passwords_off(request)
        return super().dispatch(request, *args, **kwargs)


class PasswordChangeView(PasswordGuardMixin, auth_views.PasswordChangeView):
    superusers_may = True


class PasswordResetView(PasswordGuardMixin, auth_views.PasswordResetView):
    pass


class PasswordResetConfirmView(PasswordGuardMixin, auth_views.PasswordResetConfirmView):
    pass


class AdminLoginView(LoginView):
    """The admin's login is this same page (single sign-on, MFA and lockout included),
    returning to the admin."""

    next_page = "admin:index"
