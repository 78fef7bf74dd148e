"""Governance writes, one function per use case (named <noun>_<verb>, keyword-only, taking
the acting user).

Every service follows one order: atomic transaction → re-fetch with select_for_update →
permission and state checks (raising core.errors.DomainError subclasses a user can
read) → FSM transition → save → core.audit.audit_record in the same transaction → on_commit
side effects. Split by topic; import from here.
"""

from __future__ import annotations

from ._common import is_live
from .breakglass import (
    break_glass_create,
    break_glass_expire_due,
    break_glass_review_approve,
    break_glass_revoke,
    may_break_glass,
    may_review_break_glass,
)
from .cab import (
    agenda_item_add,
    agenda_item_close,
    agenda_item_move,
    meeting_build_agenda,
    meeting_close,
    meeting_create,
    meeting_mark_attendance,
)
from .changes import (
    change_request_close,
    change_request_create,
    change_request_delete,
    change_request_implement,
    change_request_open_for_release,
    change_request_request_info,
    change_request_review,
    change_request_submit,
    change_request_update,
    change_request_withdraw,
)
from .freezes import (
    freeze_exception_approve,
    freeze_exception_reject,
    freeze_exception_request,
    freeze_window_create,
    freeze_window_update,
)
from .gates import (
    gate_record_result,
    gate_reject,
    gate_reset,
    gate_sign_off,
    gate_waive,
    gates_evaluate_for_release,
    gates_instantiate,
    gates_invalidate,
    may_waive,
)
from .risk import risk_assess, risk_override
from .votes import vote_cast, vote_withdraw

__all__ = [
    "agenda_item_add",
    "agenda_item_close",
    "agenda_item_move",
    "break_glass_create",
    "break_glass_expire_due",
    "break_glass_review_approve",
    "break_glass_revoke",
    "change_request_close",
    "change_request_create",
    "change_request_delete",
    "change_request_implement",
    "change_request_open_for_release",
    "change_request_request_info",
    "change_request_review",
    "change_request_submit",
    "change_request_update",
    "change_request_withdraw",
    "freeze_exception_approve",
    "freeze_exception_reject",
    "freeze_exception_request",
    "freeze_window_create",
    "freeze_window_update",
    "gate_record_result",
    "gate_reject",
    "gate_reset",
    "gate_sign_off",
    "gate_waive",
    "gates_evaluate_for_release",
    "gates_instantiate",
    "gates_invalidate",
    "is_live",
    "may_break_glass",
    "may_review_break_glass",
    "may_waive",
    "meeting_build_agenda",
    "meeting_close",
    "meeting_create",
    "meeting_mark_attendance",
    "risk_assess",
    "risk_override",
    "vote_cast",
    "vote_withdraw",
]
