"""The only place that builds clients and connections; each is built once per container, lazily."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast

import boto3
from botocore.config import Config

from .adapters.database import Database
from .adapters.fanout_queue import FanoutQueue
from .adapters.locks import PayoutLocks
from .adapters.open_payouts import OpenPayouts
from .adapters.outbox import Outbox
from .adapters.postgres import PayoutRepository
from .adapters.reconcile_queries import ReconcileQueries
from .adapters.sandbox_pix import SandboxPixProvider
from .adapters.secrets import database_url_from_secret, webhook_secret_from_secret
from .adapters.sqs_queue import DeadLetters, PayoutQueue
from .adapters.transitions import Transitions
from .adapters.views import ReadModel
from .adapters.webhook_queue import WebhookQueue
from .adapters.webhook_store import WebhookStore
from .domain.end_to_end import end_to_end_id_factory
from .domain.provider import PixProvider
from .settings import Settings, get_settings

if TYPE_CHECKING:
    from .adapters.efi import EfiCredentials, EfiProvider
    from .adapters.efi.listing import EfiSends
    from .adapters.webhook_sender import WebhookSender
    from .services.batches import FanoutPlan
    from .services.settle_messages import Policy

_cache: dict[str, Any] = {}
T = TypeVar("T")


def once(name: str, build: Callable[[], T]) -> T:
    """Build a thing the first time it is asked for in this container, then reuse it."""
    if name not in _cache:
        _cache[name] = build()
    return cast(T, _cache[name])


def reset() -> None:
    """Forget every built client (tests, or after settings change)."""
    for db in (_cache.get("db"), _cache.get("provider_db")):
        if db is not None:
            db.close()
    if _cache.get("efi_provider") is not None:
        _cache["efi_provider"].close()
    if _cache.get("webhook_sender") is not None:
        _cache["webhook_sender"].close()
    _cache.clear()
    get_settings.cache_clear()


def settings() -> Settings:
    return get_settings()


def _boto_config(pool: int = 10) -> Config:
    # boto3's standard retry mode already backs off on throttling and 5xx; keep timeouts short
    # so a dead endpoint fails a request quickly instead of eating API Gateway's 29 s.
    # Parameter validation is skipped: we build every request ourselves, and it was a
    # measurable share of the CPU of 1,000 SendMessageBatch calls per 10,000-item batch.
    return Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=3,
        read_timeout=10,
        max_pool_connections=pool,
        parameter_validation=False,
    )


def database_url() -> str:
    s = settings()
    if not s.database_secret_arn:
        return s.database_url
    return once(
        "database_url",
        lambda: database_url_from_secret(boto3.client("secretsmanager", config=_boto_config()), s.database_secret_arn),
    )


def database() -> Database:
    s = settings()
    return once("db", lambda: Database(database_url(), s.db_connect_timeout_seconds))


def repository() -> PayoutRepository:
    return once("repo", lambda: PayoutRepository(database()))


def sqs() -> Any:
    return once("sqs", lambda: boto3.client("sqs", config=_boto_config(settings().enqueue_workers * 2)))


def read_model() -> ReadModel:
    return once("views", lambda: ReadModel(database()))


def queue() -> PayoutQueue:
    s = settings()
    return once("queue", lambda: PayoutQueue(sqs(), s.payouts_queue_url, s.enqueue_workers, s.payouts_per_message))


def outbox() -> Outbox:
    return once("outbox", lambda: Outbox(database()))


def fanout_queue() -> FanoutQueue:
    return once("fanout_queue", lambda: FanoutQueue(sqs(), settings().fanout_queue_url))


def fanout_plan() -> FanoutPlan:
    # Imported on first use, like the Efí adapter: the services import the service's logger (see efi_credentials).
    from .services.batches import FanoutPlan

    s = settings()
    return once("fanout_plan", lambda: FanoutPlan(fanout_queue(), s.fanout_range_items, s.sweep_grace_seconds))


def dead_letters() -> DeadLetters:
    s = settings()
    return once(
        "dlq",
        lambda: DeadLetters(sqs(), s.payouts_dlq_url, s.payouts_queue_url),
    )


def efi_credentials() -> EfiCredentials:
    # Imported on first use: a sandbox container never loads httpx, and importing the service's logger
    # early (before Chalice configures its app logger of the same name) would change its level.
    from .adapters.efi import EfiCredentials

    s = settings()
    if s.efi_secret_arn:
        return once(
            "efi_credentials",
            lambda: EfiCredentials.from_secret(boto3.client("secretsmanager", config=_boto_config()), s.efi_secret_arn),
        )
    return once(
        "efi_credentials",
        lambda: EfiCredentials.from_files(s.efi_cert_file, s.efi_key_file, s.efi_credentials_file, s.efi_ca_file),
    )


def efi_provider() -> EfiProvider:
    from .adapters.efi import EfiProvider

    s = settings()
    if not s.efi_base_url:
        raise RuntimeError("PIX_PROVIDER=efi needs EFI_BASE_URL")
    return once(
        "efi_provider",
        lambda: EfiProvider(
            s.efi_base_url,
            efi_credentials(),
            s.efi_payer_key,
            connect_timeout=s.efi_connect_timeout_seconds,
            read_timeout=s.efi_read_timeout_seconds,
            max_connections=s.efi_max_connections,
        ),
    )


def provider() -> PixProvider:
    s = settings()
    if s.pix_provider == "efi":
        return efi_provider()
    if s.pix_provider != "sandbox":
        raise RuntimeError(f"unknown PIX_PROVIDER {s.pix_provider!r}; 'sandbox' or 'efi'")
    # The sandbox plays an external system: its own connection, its own commits.
    return once(
        "provider",
        lambda: SandboxPixProvider(
            # The sandbox stands in for a remote provider "at zero latency": its ledger's commits need not
            # wait for the disk. Ours do (every other connection commits synchronously).
            once(
                "provider_db",
                lambda: Database(
                    database_url(),
                    s.db_connect_timeout_seconds,
                    options="-c synchronous_commit=off",
                    application_name="pix-sandbox",
                ),
            ),
            s.sandbox_rules,
            s.sandbox_latency_ms,
        ),
    )


def new_e2e_id() -> str:
    make = once("e2e_ids", lambda: end_to_end_id_factory(settings().payer_ispb, lambda: datetime.now(UTC)))
    return make()


def settle_policy() -> Policy:
    from .services.settle_messages import Policy

    s = settings()
    return Policy(
        max_provider_attempts=s.max_provider_attempts,
        retry_base_seconds=s.retry_base_seconds,
        retry_max_seconds=s.retry_max_seconds,
        infra_retry_max_seconds=s.infra_retry_max_seconds,
        in_progress_retry_seconds=s.in_progress_retry_seconds,
        max_receive_count=s.max_receive_count,
        provider_name=s.pix_provider,
        provider_concurrency=s.provider_concurrency,
        provider_call_seconds=s.efi_connect_timeout_seconds + s.efi_read_timeout_seconds,
    )


def locks() -> PayoutLocks:
    s = settings()
    return once("locks", lambda: PayoutLocks(boto3.client("dynamodb", config=_boto_config()), s.idempotency_table))


def provider_sends() -> EfiSends:
    """Efí's books of this account, as reconciliation reads them."""
    from .adapters.efi.listing import EfiSends

    return once("provider_sends", lambda: EfiSends(efi_provider()))


def efi_webhook_secret() -> str:
    """EFI_WEBHOOK_SECRET, else on AWS the "webhook_secret" of the Efí secret (EFI_SECRET_ARN); empty refuses all."""
    s = settings()
    if s.efi_webhook_secret or not s.efi_secret_arn:
        return s.efi_webhook_secret
    return once(
        "efi_webhook_secret",
        lambda: webhook_secret_from_secret(boto3.client("secretsmanager", config=_boto_config()), s.efi_secret_arn),
    )


def transitions() -> Transitions:
    return once("transitions", lambda: Transitions(database()))


def open_payouts() -> OpenPayouts:
    return once("open_payouts", lambda: OpenPayouts(database()))


def reconcile_queries() -> ReconcileQueries:
    return once("reconcile_queries", lambda: ReconcileQueries(database()))


def webhook_store() -> WebhookStore:
    return once("webhook_store", lambda: WebhookStore(database()))


def webhook_queue() -> WebhookQueue:
    return once("webhook_queue", lambda: WebhookQueue(sqs(), settings().webhook_queue_url))


def webhook_sender() -> WebhookSender:
    # Imported on first use, like the Efí adapter: only the delivery function loads httpx for webhooks.
    from .adapters.webhook_sender import WebhookSender

    s = settings()
    return once("webhook_sender", lambda: WebhookSender(s.webhook_timeout_seconds, s.webhooks_allow_http_loopback))
