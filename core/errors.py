"""Domain errors raised by services. The API and the pages turn them into 4xx answers.

Shared by every app; imports no project app."""

from __future__ import annotations

from collections.abc import Sequence


class DomainError(Exception):
    """Base class: a refused operation with a message meant for the user."""

    status_code = 400
    code = "invalid"

    def __init__(self, message: str, *, details: Sequence | dict | None = None):
        super().__init__(message)
        self.message = message
        self.details = details


class PermissionDenied(DomainError):
    status_code = 403
    code = "permission_denied"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class InvalidInput(DomainError):
    status_code = 400
    code = "invalid"


class TransitionNotAllowed(DomainError):
    """The object is not in a state from which this transition is possible (often because
    somebody else moved it first): a conflict with the current state."""

    status_code = 409
    code = "transition_not_allowed"


class RequirementsNotMet(DomainError):
    """The transition is possible from this state but requirements are unmet; details lists
    the blockers."""

    status_code = 409
    code = "requirements_not_met"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
