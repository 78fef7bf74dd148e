"""HTTP glue that is not business logic: response headers every API answer carries."""

from __future__ import annotations

from django.utils.cache import add_never_cache_headers


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
