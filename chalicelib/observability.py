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
