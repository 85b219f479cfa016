"""The service's structured logger and CloudWatch metrics (Powertools; EMF lines on stdout)."""

import warnings

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "pix-payouts"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace="PixPayouts", service=SERVICE)


def count(name: str, value: int = 1) -> None:
    if value:
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def flush_metrics() -> None:
    """Publish what this invocation counted (no-op when it counted nothing)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Powertools warns when there is nothing to publish
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
