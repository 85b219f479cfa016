"""Every adapter that calls AWS answers in the domain's errors, never botocore's.

Real boto3 clients: an outage is a client pointed at a local port nothing listens on (botocore
fails to connect, as it would against a dead endpoint); an AWS answer is botocore's Stubber, which
makes the real client raise the ClientError AWS would send. No code of ours is replaced.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError
from botocore.stub import Stubber

from chalicelib.adapters.aws_errors import translate
from chalicelib.adapters.efi.credentials import EfiCredentials
from chalicelib.adapters.fanout_queue import FanoutQueue
from chalicelib.adapters.locks import PayoutLocks
from chalicelib.adapters.secrets import database_url_from_secret, webhook_secret_from_secret
from chalicelib.adapters.webhook_queue import WebhookQueue
from chalicelib.domain.errors import DependencyRefused, Unavailable

QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/q"
PAYOUT = "5f0c6f8e-3a52-4d2c-9a57-0d6a1f1f2b3c"


def closed_port() -> int:
    """A local port with nothing listening: connecting to it is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def client(service: str, endpoint: str | None = None) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        endpoint_url=endpoint,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=1, read_timeout=1),
    )


@pytest.fixture
def down() -> str:
    return f"http://127.0.0.1:{closed_port()}"


@pytest.fixture
def stubbed() -> Iterator[Any]:
    """stubbed(service) -> (client, stubber); every stub queued must have been used."""
    stubbers: list[Stubber] = []

    def make(service: str) -> tuple[Any, Stubber]:
        c = client(service)
        stubber = Stubber(c)
        stubber.activate()
        stubbers.append(stubber)
        return c, stubber

    yield make
    for s in stubbers:
        s.assert_no_pending_responses()
        s.deactivate()


def refused_not_outage(exc: BaseException) -> bool:
    return isinstance(exc, DependencyRefused)


# --- the rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "refused"),
    [
        ("ThrottlingException", 400, False),
        ("ProvisionedThroughputExceededException", 400, False),
        ("AWS.SimpleQueueService.RequestThrottled", 403, False),
        ("InternalFailure", 500, False),
        ("ServiceUnavailable", 503, False),
        ("AccessDeniedException", 400, True),
        ("ResourceNotFoundException", 400, True),
        ("AWS.SimpleQueueService.NonExistentQueue", 400, True),
    ],
)
def test_throttling_and_5xx_are_outages_and_other_answers_refusals(code: str, status: int, refused: bool) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")
    error = translate(exc, "the queue")
    assert isinstance(error, Unavailable)
    assert isinstance(error, DependencyRefused) is refused


def test_no_connection_is_an_outage_and_no_credentials_a_refusal() -> None:
    outage = translate(EndpointConnectionError(endpoint_url="http://x"), "the queue")
    assert type(outage) is Unavailable and str(outage) == "the queue is unavailable"
    assert isinstance(translate(NoCredentialsError(), "the queue"), DependencyRefused)


# --- the lock table ----------------------------------------------------------------------------------


def test_a_lock_table_that_is_down_is_unavailable_and_the_sdk_error_stays_on_the_chain(down: str) -> None:
    locks = PayoutLocks(client("dynamodb", down), "locks")
    with pytest.raises(Unavailable) as raised:
        locks.acquire([PAYOUT], "worker-a", 60)
    assert not refused_not_outage(raised.value)
    assert isinstance(raised.value.__cause__, BotoCoreError)
    with pytest.raises(Unavailable):
        locks.release(PAYOUT, "worker-a")


def test_a_missing_lock_table_is_a_refusal(stubbed: Any) -> None:
    dynamodb, stub = stubbed("dynamodb")
    stub.add_client_error("transact_write_items", "ResourceNotFoundException", "no table", 400)
    stub.add_client_error("delete_item", "AccessDeniedException", "no", 400)
    locks = PayoutLocks(dynamodb, "locks")
    with pytest.raises(DependencyRefused) as raised:
        locks.acquire([PAYOUT], "worker-a", 60)
    assert isinstance(raised.value.__cause__, ClientError)
    with pytest.raises(DependencyRefused):
        locks.release(PAYOUT, "worker-a")


def test_a_throttled_lock_table_is_an_outage(stubbed: Any) -> None:
    dynamodb, stub = stubbed("dynamodb")
    stub.add_client_error("transact_write_items", "ThrottlingException", "slow down", 400)
    with pytest.raises(Unavailable) as raised:
        PayoutLocks(dynamodb, "locks").acquire([PAYOUT], "worker-a", 60)
    assert not refused_not_outage(raised.value)


def test_a_failed_condition_is_an_answer_not_an_error(stubbed: Any) -> None:
    # Held by someone else: the first condition (free) fails, then the second (expired) too.
    dynamodb, stub = stubbed("dynamodb")
    held = {"CancellationReasons": [{"Code": "ConditionalCheckFailed", "Message": "held"}]}
    for _ in range(2):
        stub.add_client_error(
            "transact_write_items", "TransactionCanceledException", "cancelled", 400, modeled_fields=held
        )
    stub.add_client_error("delete_item", "ConditionalCheckFailedException", "not yours", 400)
    locks = PayoutLocks(dynamodb, "locks")
    assert locks.acquire([PAYOUT], "worker-b", 60) == ([], [PAYOUT])
    locks.release(PAYOUT, "worker-b")  # someone else's lock now: left alone, no error


# --- Secrets Manager ---------------------------------------------------------------------------------


def test_a_secret_store_that_is_down_is_unavailable_for_every_secret(down: str) -> None:
    secrets = client("secretsmanager", down)
    for read in (database_url_from_secret, webhook_secret_from_secret, EfiCredentials.from_secret):
        with pytest.raises(Unavailable) as raised:
            read(secrets, "arn:secret")
        assert not refused_not_outage(raised.value)
        assert isinstance(raised.value.__cause__, BotoCoreError)


def test_a_missing_secret_is_a_refusal(stubbed: Any) -> None:
    secrets, stub = stubbed("secretsmanager")
    stub.add_client_error("get_secret_value", "ResourceNotFoundException", "no such secret", 400)
    with pytest.raises(DependencyRefused) as raised:
        database_url_from_secret(secrets, "arn:secret")
    assert "no such secret" not in str(raised.value)  # the message names the dependency only


# --- the fan-out and webhook queues ----------------------------------------------------------------------


def test_a_fanout_queue_that_is_down_raises_unavailable_on_wake_and_delay_and_leaves_every_id_unwoken(
    down: str,
) -> None:
    queue = FanoutQueue(client("sqs", down), QUEUE_URL)
    with pytest.raises(Unavailable) as raised:
        queue.wake([1, 2])
    assert isinstance(raised.value.__cause__, BotoCoreError)
    with pytest.raises(Unavailable):
        queue.delay("receipt", 5)
    assert queue.wake_each(list(range(25))) == list(range(25))


def test_a_deleted_fanout_queue_is_a_refusal_and_a_throttled_one_an_outage(stubbed: Any) -> None:
    sqs, stub = stubbed("sqs")
    stub.add_client_error("send_message", "AWS.SimpleQueueService.NonExistentQueue", "gone", 400)
    stub.add_client_error("send_message", "ThrottlingException", "slow down", 400)
    queue = FanoutQueue(sqs, QUEUE_URL)
    with pytest.raises(DependencyRefused):
        queue.wake([1])
    with pytest.raises(Unavailable) as raised:
        queue.wake([1])
    assert not refused_not_outage(raised.value)


def test_a_fanout_send_refused_after_a_first_chunk_returns_only_the_rest(stubbed: Any) -> None:
    sqs, stub = stubbed("sqs")
    stub.add_response("send_message_batch", {"Successful": [], "Failed": []})
    stub.add_client_error("send_message_batch", "InternalError", "boom", 500)
    assert FanoutQueue(sqs, QUEUE_URL).wake_each(list(range(15))) == list(range(10, 15))


def test_a_webhook_queue_that_is_down_leaves_every_delivery_unsent(down: str) -> None:
    assert WebhookQueue(client("sqs", down), QUEUE_URL).send([[1, 2], [3]]) == [1, 2, 3]
