"""The ingest benchmark's baseline: the least a Django view can do to accept a run.

Mounted only when RELEASEGATE_BENCHMARK_BASELINE=1 (benchmarks/ingest.py sets it), behind the
same server, settings and middleware as the real endpoint: parse the JSON body and do one
INSERT of the same pipeline run row. No auth, no validation, no checks, no artefacts, no
audit, no task — the ratio real/baseline measures what those cost.
"""

from __future__ import annotations

import json

from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from releases.models import Service

from ..models import PipelineRun

_service_ids: dict[str, int] = {}


@csrf_exempt
@require_POST
def baseline_insert(request):
    data = json.loads(request.body)
    slug = data["service"]
    if slug not in _service_ids:  # once per process, like the real endpoint's token cache
        _service_ids[slug] = Service.objects.only("id").get(slug=slug).pk
    now = timezone.now()
    run = PipelineRun.objects.create(
        service_id=_service_ids[slug],
        provider=data["provider"],
        external_id=data["external_id"],
        attempt=data.get("attempt", 1),
        status=data["status"],
        commit_sha=data.get("commit_sha", ""),
        ref=data.get("ref", ""),
        version=data.get("version", ""),
        url=data.get("url", ""),
        started_at=data.get("started_at"),
        finished_at=data.get("finished_at"),
        created_at=now,
        updated_at=now,
    )
    return JsonResponse({"id": run.pk}, status=201)
