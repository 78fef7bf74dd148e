"""Apply the retention policy to pipeline runs and webhook deliveries now (beat does it every
30 minutes): ``manage.py prune_pipeline_data [--dry-run] [--max-batches N]``."""

from __future__ import annotations

from dataclasses import replace

from django.core.management.base import BaseCommand, CommandError

from pipelines.services.retention import RetentionPolicy, pipeline_data_prune


class Command(BaseCommand):
    help = (
        "Delete pipeline runs and webhook deliveries older than the retention policy "
        "(PIPELINE_RUNS_KEEP_DAYS, PIPELINE_RUNS_KEEP_PER_SERVICE, WEBHOOK_DELIVERIES_KEEP_DAYS), "
        "summarising runs first; runs a release's evidence refers to are kept."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; change nothing."
        )
        parser.add_argument(
            "--max-batches",
            type=int,
            default=None,
            help="Stop after this many batches (default PIPELINE_PRUNE_MAX_BATCHES).",
        )

    def handle(self, *args, dry_run: bool, max_batches: int | None, **options):
        policy = RetentionPolicy.from_settings()
        if max_batches is not None:
            if max_batches < 1:
                raise CommandError("--max-batches must be at least 1.")
            policy = replace(policy, max_batches=max_batches)
        self.stdout.write(
            f"Policy: runs older than {policy.runs_keep_days or '∞'} days and beyond the newest "
            f"{policy.runs_keep_per_service or '∞'} per service; webhook deliveries older than "
            f"{policy.deliveries_keep_days or '∞'} days; batches of {policy.batch_size}."
        )
        report = pipeline_data_prune(policy=policy, dry_run=dry_run)
        verb = "Would delete" if dry_run else "Deleted"
        for slug, n in sorted(report.runs_by_service.items()):
            self.stdout.write(f"  {slug}: {n} runs")
        self.stdout.write(
            f"{verb} {report.runs} runs"
            + ("" if dry_run else f" ({report.checks} checks, {report.summaries} summaries)")
            + f" and {report.deliveries} webhook deliveries"
            + ("" if dry_run else f" in {report.batches} batches")
            + "."
        )
        if report.more:
            self.stdout.write("More remain: run it again, or let beat go on.")
