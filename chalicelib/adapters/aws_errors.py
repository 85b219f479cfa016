"""botocore's errors turned into the domain's at the adapter boundary, so no caller catches an SDK type.

Two cases stay apart, because an operator acts on them differently:
- an outage (no connection, a timeout, throttling, a 5xx): `Unavailable`, it passes by itself;
- a refusal (access denied, no such queue, table or secret, no credentials): `DependencyRefused`,
  the configuration is wrong and only an operator fixes it.
Both are an Unavailable to the use cases: nothing was done, keep the work and come back later.

An answer that means something to one adapter (a failed condition on a lock, an emulator without
StartMessageMoveTask) is read by that adapter first, inside `aws_errors`; only the rest is
translated. The message names the dependency, never the request (it can reach an API answer);
the SDK's error stays on the chain (`raise ... from`) for the logs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from ..domain.errors import DependencyRefused, Unavailable

# Codes AWS answers for "too many calls now", across SQS, DynamoDB and Secrets Manager.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "AWS.SimpleQueueService.RequestThrottled",
        "KMSThrottlingException",
    }
)
# Local misconfiguration the SDK finds before any call: no retry helps.
_CONFIGURATION_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError)


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def is_outage(exc: ClientError) -> bool:
    """Throttling or the service's own fault (5xx): retrying later is the fix."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return error_code(exc) in THROTTLING_CODES or (isinstance(status, int) and status >= 500)


def translate(exc: BotoCoreError | ClientError, dependency: str) -> Unavailable:
    """The domain error for one SDK error; `dependency` names what was called ("the lock table")."""
    if isinstance(exc, ClientError):
        if is_outage(exc):
            return Unavailable(f"{dependency} is unavailable")
        return DependencyRefused(f"{dependency} refused the call")
    if isinstance(exc, _CONFIGURATION_ERRORS):
        return DependencyRefused(f"{dependency} cannot be called: no AWS credentials or region")
    # Connection refused or reset, timeouts, and whatever else botocore raises on the way.
    return Unavailable(f"{dependency} is unavailable")


@contextmanager
def aws_errors(dependency: str) -> Iterator[None]:
    """Run AWS calls; an SDK error leaves as the domain's (`raise ... from`, the SDK's error kept)."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise translate(exc, dependency) from exc
