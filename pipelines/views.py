"""Server-rendered pages of the pipelines app (thin: a selector and a template)."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from releases import selectors as release_selectors
from releases.models import Release

from . import selectors


@login_required
def release_delivery_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """The release page's delivery panel (loaded lazily): CI runs with their checks,
    artefacts with digests, deployments per environment. Whoever sees the release sees it."""
    try:
        release = (
            release_selectors.visible_releases(viewer=request.user)
            .prefetch_related("services")
            .get(pk=pk)
        )
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    return render(
        request,
        "pipelines/partials/release_delivery.html",
        {"release": release, "delivery": selectors.release_delivery(release=release)},
    )
