"""The service's structured logger and CloudWatch metrics (Powertools; EMF lines on stdout)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "pix-payouts"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="PixPayouts", service=SERVICE)

# An invocation that counted nothing publishes nothing; Powertools warns about it on every such flush.
warnings.filterwarnings("ignore", message="No application metrics to publish")


class ChaliceEvent(Protocol):
    """What Chalice hands an event handler (SQSEvent, CloudWatchEvent): the raw event and the Lambda context."""

    context: Any

    def to_dict(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=ChaliceEvent)
R = TypeVar("R")


def count(name: str, value: int = 1) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Publish what this invocation counted (no-op when it counted nothing)."""
    metrics.flush_metrics()


def metric_fields() -> dict[str, object]:
    """What this invocation counted, as EMF fields to put in a log line (then cleared).

    A JSON log line with an `_aws` key is an EMF document: one line carries both the log and the
    metrics, where flush_metrics would print a second one.
    """
    if not metrics.metric_set:
        return {}
    fields: dict[str, object] = dict(metrics.serialize_metric_set())
    metrics.clear_metrics()
    return fields


def observed(handler: Callable[[E], R]) -> Callable[[E], R]:
    """Powertools' `log_metrics` and `inject_lambda_context` around a Chalice event handler.

    Our own adapter because Powertools' decorators call `handler(event_dict, context)` while Chalice
    calls `handler(event_object)`: the decorators wrap an inner (event, context) function instead.
    Metrics are published once, when the handler returns or raises; the logger's keys start afresh.
    """

    @functools.wraps(handler)
    def wrapper(event: E) -> R:
        def run(_raw: dict[str, Any], _context: Any) -> R:
            return handler(event)

        context = event.context
        if hasattr(context, "aws_request_id") and hasattr(context, "function_name"):
            run = logger.inject_lambda_context(run, clear_state=True)
        return metrics.log_metrics(run)(event.to_dict(), context)  # type: ignore[no-any-return]

    return wrapper


@contextmanager
def correlated(message_id: str) -> Iterator[None]:
    """Every line logged inside names the SQS message being handled as its correlation_id."""
    logger.set_correlation_id(message_id)
    try:
        yield
    finally:
        logger.remove_keys(["correlation_id"])


def per_message(record_handler: Callable[[Any], R]) -> Callable[[Any], R]:
    """A Powertools batch record handler whose log lines carry the record's messageId as correlation_id."""

    @functools.wraps(record_handler)
    def handle(record: Any) -> R:
        with correlated(record.message_id):
            return record_handler(record)

    return handle
