"""HTTP glue that is not business logic: response headers every API answer carries, and the
lean path that machine calls to the API take through the middleware stack.

**The machine path.** A call under ``/api/v1/`` that carries no cookie cannot be a browser's
session: it is a CI job, a CD system or a script with a bearer token, or a signed webhook. Such
a call needs none of the browser's middleware — sessions, messages, the signed-in user, htmx,
Content-Security-Policy, Permissions-Policy, static files —
and on the ingest endpoint they cost as much as the work itself (docs/benchmarks-ingest.md).
``MachinePathMiddleware`` decides once per request; each browser-only middleware in
``MIDDLEWARE`` is wrapped by ``browser_only`` and steps aside on that path. Security behaviour
is unchanged: the token, its scopes, the rate limit, body limits and validation all live in the
API views; ``SecurityMiddleware``, ``Cache-Control: no-store`` and the audit context still run.
A browser's own API calls carry its session cookie and take the full stack.
"""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers
from django.utils.module_loading import import_string

MACHINE_PREFIX = "/api/v1/"


def is_machine_call(request) -> bool:
    """Set by MachinePathMiddleware; False for a request that did not pass it (a test's
    handler built without it takes the full stack)."""
    return getattr(request, "machine_call", False)


class MachinePathMiddleware:
    """First in the stack: marks a cookieless call under /api/v1/ as a machine call."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.machine_call = request.path_info.startswith(
            MACHINE_PREFIX
        ) and not request.META.get("HTTP_COOKIE")
        return self.get_response(request)


_HOOKS = ("process_view", "process_exception", "process_template_response")


class _BrowserOnly:
    """Mixed in before a middleware class: that middleware, skipped on the machine path. The
    result is a subclass of the original, so Django's checks (the admin's, for instance) still
    find the middleware they require."""

    def __init__(self, get_response):
        super().__init__(get_response)
        self.get_response = get_response
        # Django registers these hooks only if the instance has them: guard the inner ones.
        for hook in _HOOKS:
            if hasattr(self, hook):
                setattr(self, hook, self._guarded(hook, getattr(self, hook)))

    def __call__(self, request):
        if getattr(request, "machine_call", False):
            return self.get_response(request)
        return super().__call__(request)

    @staticmethod
    def _guarded(name: str, method):
        def hook(request, *args, **kwargs):
            if getattr(request, "machine_call", False):
                # process_template_response must hand the response on; the others pass.
                return args[0] if name == "process_template_response" else None
            return method(request, *args, **kwargs)

        return hook


def browser_only(path: str) -> type:
    """``browser_only("django.contrib.sessions.middleware.SessionMiddleware")``: that
    middleware, skipped on the machine path."""
    inner = import_string(path)
    return type(f"BrowserOnly{inner.__name__}", (_BrowserOnly, inner), {"__module__": __name__})


# The browser-only middleware of MIDDLEWARE (config/settings/base.py names them in this order).
BrowserOnlyPermissionsPolicyMiddleware = browser_only(
    "django_permissions_policy.PermissionsPolicyMiddleware"
)
BrowserOnlyCSPMiddleware = browser_only("csp.middleware.CSPMiddleware")
BrowserOnlyWhiteNoiseMiddleware = browser_only("whitenoise.middleware.WhiteNoiseMiddleware")
BrowserOnlySessionMiddleware = browser_only("django.contrib.sessions.middleware.SessionMiddleware")
BrowserOnlyAuthenticationMiddleware = browser_only(
    "django.contrib.auth.middleware.AuthenticationMiddleware"
)
BrowserOnlyMessageMiddleware = browser_only("django.contrib.messages.middleware.MessageMiddleware")
BrowserOnlyHtmxMiddleware = browser_only("django_htmx.middleware.HtmxMiddleware")


class ApiNoStoreMiddleware:
    """API answers (JSON about releases, tokens' views of them) are never stored by a browser
    or a shared cache: ``Cache-Control: no-store`` on everything under /api/."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if request.path_info.startswith("/api/"):
            add_never_cache_headers(response)  # no-cache, no-store, must-revalidate, private
        return response
