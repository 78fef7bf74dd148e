"""Who else hears of a gate's change: a registry that higher apps fill in their
``AppConfig.ready()`` (pipelines publishes gate results as commit statuses on GitHub and
GitLab), so governance never imports them.

A listener takes the changed ``GateCheck`` and runs inside the change's transaction, after
its audit event: it may only register work for after commit (``transaction.on_commit``),
never call out.
"""

from __future__ import annotations

from collections.abc import Callable

GateListener = Callable[[object], None]

_listeners: list[GateListener] = []


def register(listener: GateListener) -> None:
    if listener not in _listeners:
        _listeners.append(listener)


def notify(gate) -> None:
    for listener in list(_listeners):
        listener(gate)
