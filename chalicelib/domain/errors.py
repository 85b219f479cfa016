"""The service's error tree; chalicelib/api/errors.py maps it to HTTP."""

from __future__ import annotations


class ServiceError(Exception):
    """Base of every error the service raises on purpose."""

    code = "error"


class BadRequest(ServiceError):
    code = "bad_request"


class PayloadTooLarge(ServiceError):
    code = "payload_too_large"


class Conflict(ServiceError):
    code = "conflict"

    def __init__(self, message: str, details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


class NotFound(ServiceError):
    code = "not_found"


class Unavailable(ServiceError):
    """A dependency (database, queue) is down; the caller should retry later."""

    code = "unavailable"

    def __init__(self, message: str, retry_after_seconds: int = 5) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class DependencyRefused(Unavailable):
    """A dependency answered but refused the call: access denied, no such queue, table or secret.

    Not an outage: retrying fixes nothing until an operator fixes the configuration, so logs and
    alarms tell it apart. It stays an Unavailable because for a payout the answer is the same:
    nothing was done, keep the work and come back later; never drop it, never fail it."""


class Busy(Unavailable):
    """Concurrent writes kept conflicting (deadlocks, lock timeouts) after a few retries in place.

    The database is up: this is not "unavailable", only "not now"."""

    code = "busy"

    def __init__(self, message: str, retry_after_seconds: int = 1) -> None:
        super().__init__(message, retry_after_seconds)


class ProviderError(ServiceError):
    """The Pix provider did not pay; subclasses say whether to retry."""

    code = "provider_error"

    def __init__(self, message: str, provider_code: str | None = None) -> None:
        super().__init__(message)
        self.provider_code = provider_code


class ProviderRejected(ProviderError):
    """Permanent: the payout fails now (invalid, blocked or closed account...)."""

    code = "provider_rejected"


class ProviderTransientError(ProviderError):
    """Nothing was paid; the same transfer may be sent again later."""

    code = "provider_transient"


class ProviderThrottled(ProviderTransientError):
    """The provider refused to take the call now (HTTP 429): nothing was sent; wait as it asks."""

    code = "provider_throttled"

    def __init__(self, message: str, retry_after_seconds: float, provider_code: str | None = None) -> None:
        super().__init__(message, provider_code)
        self.retry_after_seconds = retry_after_seconds


class ProviderOutcomeUnknown(ProviderError):
    """The call failed after it may have paid: ask the provider before sending again."""

    code = "provider_outcome_unknown"


class WriteConflict(Exception):
    """The database rolled a write back on a lost lock conflict (deadlock, lock timeout): run it again."""

    def __init__(self, message: str, pgcode: str | None = None) -> None:
        super().__init__(message)
        self.pgcode = pgcode


class ExternalIdTaken(Exception):
    """A concurrent batch committed one of this batch's external_ids first: plan the batch again."""
