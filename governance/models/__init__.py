"""Governance data, one module per purpose: gate policies and checks, risk assessments,
change requests with CAB meetings and votes, freeze windows and exceptions. (The audit trail
lives in core.models.)"""

from __future__ import annotations

from .breakglass import BreakGlass
from .changes import (
    AgendaItem,
    CABMeeting,
    ChangeRequest,
    QuorumPolicyRecord,
    Recusal,
    Vote,
)
from .freezes import (
    FreezeException,
    FreezeWindow,
)
from .gates import (
    GateCheck,
    GatePolicy,
    PolicySnapshot,
)
from .risk import (
    RiskAssessment,
)

__all__ = [
    "AgendaItem",
    "BreakGlass",
    "CABMeeting",
    "ChangeRequest",
    "FreezeException",
    "FreezeWindow",
    "GateCheck",
    "GatePolicy",
    "PolicySnapshot",
    "QuorumPolicyRecord",
    "Recusal",
    "RiskAssessment",
    "Vote",
]
