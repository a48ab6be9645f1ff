"""Exceptions raised by privseg. Each carries the message and, where a
compliance rule (R1-R21) refused the call, its id in ``rule``."""

from typing import Optional


class PrivsegError(Exception):
    """Base class of every privseg error."""

    def __init__(self, message: str, rule: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        #: The rule id ("R7", "R19", ...) when a compliance rule refused the call.
        self.rule = rule

    def __str__(self) -> str:
        return self.message if self.rule is None else f"{self.message} [{self.rule}]"


class InvalidInput(PrivsegError, ValueError):
    """An argument is malformed or unknown to the policy (id, attribute, time...)."""


class InputError(PrivsegError, ValueError):
    """A subjects CSV row or an events JSONL line is malformed; the message names the line and field."""


class PolicyInvalid(PrivsegError, ValueError):
    """The policy is not valid."""


class AccessDenied(PrivsegError, PermissionError):
    """The actor's roles do not grant the permission."""


class SegmentRefused(PrivsegError):
    """The segment did not parse or was refused by validation (``rule`` says which)."""


class EventRefused(PrivsegError):
    """A consent event was refused."""


class ExportRefused(PrivsegError):
    """The export breaks the recipient's agreement (R19)."""


class PrivacyError(PrivsegError):
    """A privacy mechanism refused: DP budget, cap, pseudonym keys."""


class AuditError(PrivsegError):
    """The audit log could not record the call; nothing was released."""


class PolicyMismatch(PrivsegError):
    """A segment or result was made under another policy version."""


class StoreError(PrivsegError):
    """The durable store could not be created, opened or written (a wrong key,
    a damaged file, a store in use by another engine); nothing was changed."""


class PartialsRefused(PrivsegError):
    """Shard partials cannot be released together (coverage, segment, age...)."""


__all__ = [
    "PrivsegError",
    "InvalidInput",
    "InputError",
    "PolicyInvalid",
    "AccessDenied",
    "SegmentRefused",
    "EventRefused",
    "ExportRefused",
    "PrivacyError",
    "AuditError",
    "PolicyMismatch",
    "PartialsRefused",
    "StoreError",
]
