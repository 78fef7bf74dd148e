"""The ingest benchmark's bare baseline: a single-file Django app whose one view does one INSERT.

No project code, no project settings, no middleware: a model and a view that saves it through
the ORM, the least an ordinary Django app does to accept a CI report. ``benchmarks/ingest.py``
serves it with the same gunicorn flags as the real app and compares the real endpoint against
it (the "bare ratio"). Its table, ``bench_bare_run``, is created by the benchmark
(``BARE_TABLE`` in ingest.py) with the columns and unique key of a pipeline run's row.

    DATABASE_URL=postgres://… gunicorn --pythonpath benchmarks bare_app:application
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

import dj_database_url
from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY", "bare-benchmark-throwaway"),
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=["bare_app"],  # this module: its one model below
        USE_TZ=True,
        DATABASES={
            # Persistent connections, as the real app runs in production.
            "default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)
        },
    )

import django  # noqa: E402

django.setup()

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.db import models  # noqa: E402
from django.http import JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from django.views.decorators.http import require_POST  # noqa: E402


class BareRun(models.Model):
    """A pipeline run's columns (the table is created by benchmarks/ingest.py)."""

    service_slug = models.CharField(max_length=80)
    provider = models.CharField(max_length=32)
    external_id = models.CharField(max_length=200)
    attempt = models.IntegerField()
    status = models.CharField(max_length=16)
    commit_sha = models.CharField(max_length=64)
    ref = models.CharField(max_length=255)
    version = models.CharField(max_length=100)
    url = models.CharField(max_length=500)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        app_label = "bare_app"
        db_table = "bench_bare_run"

    def __str__(self) -> str:
        return self.external_id


@require_POST
def insert_run(request):
    data = json.loads(request.body)
    now = datetime.now(UTC)
    run = BareRun.objects.create(
        service_slug=data["service"],
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


def ready(request):
    return JsonResponse({"status": "ok"})


urlpatterns = [path("runs/", insert_run), path("", ready)]

application = get_wsgi_application()
