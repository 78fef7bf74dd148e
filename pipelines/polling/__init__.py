"""Polling of CI systems that cannot reach us: provider clients, the bounded HTTP layer and
the concurrent sweep. See docs/workers.md."""
