"""Getting accepted runs to gate evaluation without slowing the ingest request down.

Every accepted change sets ``PipelineRun.gates_pending`` in its own write (durable, no extra
round trip). After commit the run id goes to this process's dispatcher, which publishes one
Celery task per batch (``pipelines.evaluate_gates_for_runs``) from a background thread every
PIPELINES_GATE_BATCH_SECONDS: publishing a task per request cost more than the rest of the
request (see docs/benchmarks-ingest.md). If the process dies before publishing, the beat
sweep ``pipelines.evaluate_pending_gates`` finds the run by its flag. With a batch interval
of 0 the task is published on commit, in the request (tests, the embedded `make run`).
"""

from __future__ import annotations

import logging
import os
import threading
import time

from django.conf import settings

from . import tasks

logger = logging.getLogger(__name__)


class GateDispatcher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: set[int] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def add(self, run_id: int) -> None:
        interval = settings.PIPELINES_GATE_BATCH_SECONDS
        if interval <= 0:
            publish([run_id])
            return
        with self._lock:
            self._pending.add(run_id)
            # Started lazily and again after a fork (gunicorn workers), never in the parent.
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._loop, args=(interval,), name="gate-dispatch", daemon=True
                )
                self._thread.start()
        self._wake.set()

    def _loop(self, interval: float) -> None:
        while True:
            self._wake.wait()
            # Gather what arrives meanwhile (a second wait on the event would return at the
            # next add, and publish a task per request under load).
            time.sleep(interval)
            self._wake.clear()  # before the flush: an add after it wakes the next round
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = sorted(self._pending), set()
        if batch:
            publish(batch)


def publish(run_ids: list[int]) -> None:
    """Queue one evaluation task for these runs; never raises (the flag keeps the work)."""
    try:
        tasks.evaluate_gates_for_runs.delay(run_ids)
    except Exception:  # noqa: BLE001 - broker down: the beat sweep finds the flagged runs
        logger.warning("Could not queue gate evaluation for %d run(s).", len(run_ids))


dispatcher = GateDispatcher()
