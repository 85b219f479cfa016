"""One frozen settings object, read from the environment once."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str
    database_secret_arn: str
    payouts_queue_url: str
    payouts_dlq_url: str
    fanout_queue_url: str
    idempotency_table: str
    payer_ispb: str
    pix_provider: str
    sandbox_rules: str
    sandbox_latency_ms: int
    max_body_bytes: int
    enqueue_workers: int
    payouts_per_message: int
    fanout_range_items: int
    retry_base_seconds: float
    retry_max_seconds: float
    in_progress_retry_seconds: int
    db_connect_timeout_seconds: int
    max_receive_count: int
    max_provider_attempts: int
    infra_retry_max_seconds: float
    settle_lease_seconds: int
    sweep_grace_seconds: int
    sweep_stale_seconds: int
    sweep_lost_seconds: int
    open_payout_alarm_seconds: int
    sweep_limit: int
    efi_base_url: str
    efi_secret_arn: str
    efi_cert_file: str
    efi_key_file: str
    efi_ca_file: str
    efi_credentials_file: str
    efi_payer_key: str
    efi_connect_timeout_seconds: float
    efi_read_timeout_seconds: float
    efi_max_connections: int
    efi_webhook_secret: str
    provider_concurrency: int
    poll_after_seconds: int
    poll_limit: int
    webhook_queue_url: str = ""
    webhooks_allow_http_loopback: bool = False
    webhook_retry_schedule: str = ""
    webhook_retry_jitter: float = 0.2
    webhook_timeout_seconds: float = 10.0
    webhook_relay_run_seconds: float = 0.0
    webhook_relay_poll_seconds: float = 1.0
    webhook_relay_batch: int = 500
    webhook_requeue_seconds: int = 900
    webhook_message_deliveries: int = 50
    webhook_endpoint_concurrency: int = 8
    webhook_secret_overlap_seconds: int = 86400

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        return cls(
            database_url=e.get("DATABASE_URL", ""),
            # AWS: credentials in Secrets Manager; takes precedence over DATABASE_URL when set.
            database_secret_arn=e.get("DATABASE_SECRET_ARN", ""),
            payouts_queue_url=e.get("PAYOUTS_QUEUE_URL", ""),
            payouts_dlq_url=e.get("PAYOUTS_DLQ_URL", ""),
            fanout_queue_url=e.get("FANOUT_QUEUE_URL", ""),
            idempotency_table=e.get("IDEMPOTENCY_TABLE", "payouts-idempotency"),
            # ISPB of the paying institution; 8 digits, part of every end-to-end id
            payer_ispb=e.get("PIX_PAYER_ISPB", "99999999"),
            pix_provider=e.get("PIX_PROVIDER", "sandbox"),
            sandbox_rules=e.get("SANDBOX_PIX_RULES", ""),
            sandbox_latency_ms=int(e.get("SANDBOX_PIX_LATENCY_MS", "0")),
            # Lambda's synchronous payload limit is 6 MB; keep headroom for the event envelope
            max_body_bytes=int(e.get("MAX_BODY_BYTES", str(5 * 1024 * 1024))),
            enqueue_workers=int(e.get("ENQUEUE_WORKERS", "8")),
            # Payouts the fan-out puts in one message (1 to 10): SQS's work per payout falls by as much; a
            # payout that must come back leaves its group as a message of its own (services/settle_messages.py).
            payouts_per_message=int(e.get("PAYOUTS_PER_MESSAGE", "10")),
            # New payouts per fan-out task: a 10,000-item batch becomes four tasks sent side by side.
            fanout_range_items=int(e.get("FANOUT_RANGE_ITEMS", "2500")),
            retry_base_seconds=float(e.get("RETRY_BASE_SECONDS", "2")),
            retry_max_seconds=float(e.get("RETRY_MAX_SECONDS", "300")),
            in_progress_retry_seconds=int(e.get("IN_PROGRESS_RETRY_SECONDS", "5")),
            db_connect_timeout_seconds=int(e.get("DB_CONNECT_TIMEOUT_SECONDS", "5")),
            # Must equal the queue's redrive maxReceiveCount (infra/template.json). Far above the
            # provider budget: receives are also spent by crashes, held locks and outages, which
            # must never fail a payout. Past half of it a message is renewed (worker.py).
            max_receive_count=int(e.get("MAX_RECEIVE_COUNT", "100")),
            # Sends the provider may leave unpaid (transient error, unknown outcome) before the
            # payout fails RETRIES_EXHAUSTED; counted on the payout, never from SQS receives.
            max_provider_attempts=int(e.get("MAX_PROVIDER_ATTEMPTS", "5")),
            # Backoff cap while our own infrastructure fails (database, lock table, queue): retried
            # for as long as the fault lasts; the cap bounds how late a payout resumes after it ends.
            infra_retry_max_seconds=float(e.get("INFRA_RETRY_MAX_SECONDS", "120")),
            # Longer than the settle function can run (its timeout is 30 s): after this an attempt
            # that left no trace is known to be dead.
            settle_lease_seconds=int(e.get("SETTLE_LEASE_SECONDS", "60")),
            sweep_grace_seconds=int(e.get("SWEEP_GRACE_SECONDS", "120")),
            # Longer than the longest backoff (RETRY_MAX_SECONDS) plus a visibility timeout.
            sweep_stale_seconds=int(e.get("SWEEP_STALE_SECONDS", "900")),
            # When the queues hold fewer messages than there are open payouts (an emulator crash
            # lost them, a purge), payouts untouched this long are re-sent at once: two settle
            # timeouts, so none still being settled is picked.
            sweep_lost_seconds=int(e.get("SWEEP_LOST_SECONDS", "60")),
            open_payout_alarm_seconds=int(e.get("OPEN_PAYOUT_ALARM_SECONDS", "3600")),
            sweep_limit=int(e.get("SWEEP_LIMIT", "5000")),
            # PIX_PROVIDER=efi: the API host (homologation or production), and the account's certificate and
            # credentials: one Secrets Manager secret on AWS (takes precedence), else files (PEM, credentials.json).
            efi_base_url=e.get("EFI_BASE_URL", ""),
            efi_secret_arn=e.get("EFI_SECRET_ARN", ""),
            efi_cert_file=e.get("EFI_CERT_FILE", ""),
            efi_key_file=e.get("EFI_KEY_FILE", ""),
            efi_ca_file=e.get("EFI_CA_FILE", ""),
            efi_credentials_file=e.get("EFI_CREDENTIALS_FILE", ""),
            # The payer's own Pix key at Efí (pagador.chave of every send).
            efi_payer_key=e.get("EFI_PAYER_KEY", ""),
            efi_connect_timeout_seconds=float(e.get("EFI_CONNECT_TIMEOUT_SECONDS", "2")),
            # A read that times out leaves the send's outcome unknown (asked before any re-send).
            efi_read_timeout_seconds=float(e.get("EFI_READ_TIMEOUT_SECONDS", "5")),
            efi_max_connections=int(e.get("EFI_MAX_CONNECTIONS", "10")),
            # The secret in the webhook URL registered at Efí (?hmac=<secret>&ignorar=): empty refuses every call.
            efi_webhook_secret=e.get("EFI_WEBHOOK_SECRET", ""),
            # Provider calls one settle invocation makes side by side. Across containers the cap per provider
            # account is this times the settle mapping's MaximumConcurrency (infra/template.json; README).
            provider_concurrency=int(e.get("PROVIDER_CONCURRENCY", "10")),
            # The poller asks about payouts awaiting the provider's confirmation this long (a lost webhook).
            poll_after_seconds=int(e.get("POLL_AFTER_SECONDS", "60")),
            poll_limit=int(e.get("POLL_LIMIT", "500")),
            # Webhooks (README: Webhooks). The delivery queue; the relay puts due deliveries on it.
            webhook_queue_url=e.get("WEBHOOK_QUEUE_URL", ""),
            # Plain http (and https) to 127.0.0.1 for a local receiver: on in the embedded stack, off on AWS.
            # Link-local and metadata addresses are refused whatever this says.
            webhooks_allow_http_loopback=e.get("WEBHOOKS_ALLOW_HTTP_LOOPBACK", "false").lower() in ("1", "true", "yes"),
            # Seconds before each retry of a failed delivery: 5 s, 30 s, 2 min, 10 min, 1 h, 3 h, 8 h, 12 h, 12 h
            # (10 attempts over about 36 hours), each spread by +/- WEBHOOK_RETRY_JITTER.
            webhook_retry_schedule=e.get("WEBHOOK_RETRY_SCHEDULE", "5,30,120,600,3600,10800,28800,43200,43200"),
            webhook_retry_jitter=float(e.get("WEBHOOK_RETRY_JITTER", "0.2")),
            webhook_timeout_seconds=float(e.get("WEBHOOK_TIMEOUT_SECONDS", "10")),
            # The relay is started every minute and polls for this long (0: one pass), every poll interval: a
            # minute, so one run hands over to the next (two at once share the work; its timeout is 90 s).
            webhook_relay_run_seconds=float(e.get("WEBHOOK_RELAY_RUN_SECONDS", "60")),
            webhook_relay_poll_seconds=float(e.get("WEBHOOK_RELAY_POLL_SECONDS", "0.5")),
            webhook_relay_batch=int(e.get("WEBHOOK_RELAY_BATCH", "500")),
            # A delivery on the queue this long without an attempt (its message was lost) is queued again.
            webhook_requeue_seconds=int(e.get("WEBHOOK_REQUEUE_SECONDS", "900")),
            # Deliveries to one endpoint per queue message, and POSTs in flight per endpoint in one invocation:
            # 10,000 events go out as 200 messages, and a slow endpoint holds only its own threads.
            webhook_message_deliveries=int(e.get("WEBHOOK_MESSAGE_DELIVERIES", "50")),
            webhook_endpoint_concurrency=int(e.get("WEBHOOK_ENDPOINT_CONCURRENCY", "8")),
            # After a rotation the old secret keeps signing beside the new one this long.
            webhook_secret_overlap_seconds=int(e.get("WEBHOOK_SECRET_OVERLAP_SECONDS", "86400")),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
