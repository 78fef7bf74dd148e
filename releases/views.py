"""Server-rendered pages (placeholder until the pages land)."""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse

from . import selectors
from .models import Release


@login_required
def release_list(request):
    releases = selectors.release_list(viewer=request.user)[:50]
    return HttpResponse("<br>".join(str(r) for r in releases))


@login_required
def release_detail(request, pk: int):
    try:
        release = selectors.release_detail(viewer=request.user, pk=pk)
    except Release.DoesNotExist:
        raise Http404("No such release.") from None
    return HttpResponse(str(release))
