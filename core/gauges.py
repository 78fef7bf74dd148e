"""Core's scrape-time gauges (core.metrics): the notification outbox and the Celery broker's
queue. Registered in CoreConfig.ready()."""

from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from .models import Notification, NotificationStatus

_OUTBOX_STATES = (NotificationStatus.PENDING, NotificationStatus.SENDING, NotificationStatus.DEAD)


def outbox_gauges():
    """One query on the (status, next_attempt_at) index: rows waiting, being sent and given
    up, and the age of the oldest waiting one."""
    now = timezone.now()
    rows = {
        row["status"]: row
        for row in Notification.objects.filter(status__in=_OUTBOX_STATES)
        .values("status")
        .annotate(n=Count("id"), oldest=Min("created_at"))
        .order_by()
    }
    depth = GaugeMetricFamily(
        "releasegate_notification_outbox",
        "Notifications in the outbox by status: pending (waiting to be sent or retried), "
        "sending (claimed by a worker), dead (given up).",
        labels=["status"],
    )
    age = GaugeMetricFamily(
        "releasegate_notification_outbox_oldest_age_seconds",
        "Age of the oldest notification not yet delivered (pending or sending); 0 when none.",
    )
    oldest = None
    for status in _OUTBOX_STATES:
        row = rows.get(status.value, {})
        depth.add_metric([status.value], row.get("n", 0))
        if status != NotificationStatus.DEAD and row.get("oldest"):
            oldest = min(oldest or row["oldest"], row["oldest"])
    age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
    return [depth, age]


# kombu's Redis transport keeps a queue's messages of each priority step in its own list.
_PRIORITY_STEPS = (0, 3, 6, 9)
_PRIORITY_SEP = "\x06\x16"


def queue_gauges():
    """Messages waiting in the broker's default queue, and those delivered to a worker but not
    yet acknowledged; a single Redis round trip (a folder listing for the embedded broker)."""
    queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery") or "celery"
    url = settings.CELERY_BROKER_URL
    length = GaugeMetricFamily(
        "releasegate_celery_queue_length",
        "Celery messages waiting in the broker, by queue.",
        labels=["queue"],
    )
    unacked = GaugeMetricFamily(
        "releasegate_celery_unacked",
        "Celery messages delivered to a worker and not yet acknowledged (running, or "
        "reserved; a killed worker's come back after the visibility timeout).",
    )
    if url.startswith("redis"):
        import redis

        timeout = getattr(settings, "METRICS_BROKER_TIMEOUT_SECONDS", 1.0)
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            pipe = client.pipeline(transaction=False)
            for step in _PRIORITY_STEPS:
                pipe.llen(queue if step == 0 else f"{queue}{_PRIORITY_SEP}{step}")
            pipe.hlen("unacked")
            *lengths, in_flight = pipe.execute()
        finally:
            client.close()
        length.add_metric([queue], sum(lengths))
        unacked.add_metric([], in_flight)
    elif url.startswith("filesystem"):
        folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
        waiting = sum(1 for name in os.listdir(folder) if name.endswith(".msg"))
        length.add_metric([queue], waiting)
        unacked.add_metric([], 0)
    else:
        return []
    return [length, unacked]
