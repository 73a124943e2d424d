from registry.errors import Conflict, Forbidden, InvalidInput, NotFound


class TransitionNotAllowed(Conflict):
    code = "transition-not-allowed"


class SelfApprovalForbidden(Forbidden):
    code = "self-approval-forbidden"


class NotAnApprover(Forbidden):
    code = "not-an-approver"


class ConflictOfInterest(Forbidden):
    """The actor registered the version, or owns or may change the model."""

    code = "conflict-of-interest"


class TokenForbidden(Forbidden):
    """A token for another account: only admins make them, and only for ci accounts."""

    code = "token-forbidden"


class AlreadyDecided(Conflict):
    code = "already-decided"


class DuplicateOpenRequest(Conflict):
    code = "open-request-exists"


class NoPolicy(Conflict):
    code = "no-policy"


__all__ = [
    "AlreadyDecided",
    "Conflict",
    "ConflictOfInterest",
    "DuplicateOpenRequest",
    "Forbidden",
    "InvalidInput",
    "NoPolicy",
    "NotAnApprover",
    "NotFound",
    "SelfApprovalForbidden",
    "TokenForbidden",
    "TransitionNotAllowed",
]
