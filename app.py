"""Chalice entry points: HTTP routes, the SQS fan-out and settle handlers, the schedules. Glue only."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from chalice.app import Chalice, CloudWatchEvent, Cron, Rate, Request, Response, SQSEvent

from chalicelib import wiring
from chalicelib.adapters.dns import resolve
from chalicelib.api.access_log import log_request
from chalicelib.api.docs import ASSET_CACHE, ASSETS, docs_asset, docs_page
from chalicelib.api.efi_webhook import handle as efi_webhook_handle
from chalicelib.api.http import (
    conform_chalice_error,
    handles_errors,
    json_response,
    openapi_document,
    parse_json_body,
)
from chalicelib.domain.batch_request import parse_batch_request
from chalicelib.domain.reconciliation import previous_utc_day
from chalicelib.fanout_worker import handle_fanout_event
from chalicelib.observability import flush_metrics, logger, observed
from chalicelib.services import batches, confirmations, paging, queries, recovery, watch
from chalicelib.services import webhook_endpoints as webhooks
from chalicelib.services.reconcile import reconcile
from chalicelib.webhook_worker import handle_delivery_event, handle_relay
from chalicelib.worker import handle_dead_letter_event, handle_settle_event

# Chalice would otherwise configure the logger named after the app, which is the Powertools service
# logger too: whenever stdout is not the stream that logger writes to (tests capturing output, a
# runtime that swaps it), Chalice adds its own handler at ERROR and the service's INFO lines vanish.
app = Chalice(app_name="pix-payouts", configure_logs=False)


@app.middleware("http")
def one_error_shape_and_a_log_line(event: Request, get_response: Callable[[Request], Response]) -> Response:
    started = time.perf_counter()
    try:
        response = conform_chalice_error(get_response(event))
        log_request(event, response, time.perf_counter() - started)
    finally:
        logger.remove_keys(["batch_id"])  # a warm container's next request starts without it
        flush_metrics()  # what any route counted, published once per request
    return response


@app.route("/openapi.json", methods=["GET"], api_key_required=True)
@handles_errors
def openapi() -> Response:
    return Response(body=openapi_document(), status_code=200, headers={"Content-Type": "application/json"})


@app.route("/docs", methods=["GET"])
@handles_errors
def docs() -> Response:
    return Response(body=docs_page(), status_code=200, headers={"Content-Type": "text/html; charset=utf-8"})


@app.route("/docs/swagger-ui.css", methods=["GET"])
@handles_errors
def docs_css() -> Response:
    return _asset("swagger-ui.css")


@app.route("/docs/swagger-ui-bundle.js", methods=["GET"])
@handles_errors
def docs_js() -> Response:
    return _asset("swagger-ui-bundle.js")


def _asset(name: str) -> Response:
    headers: dict[str, str | list[str]] = {"Content-Type": ASSETS[name], "Cache-Control": ASSET_CACHE}
    return Response(body=docs_asset(name), status_code=200, headers=headers)


def current_request() -> Request:
    """The request being handled; Chalice sets it before any route runs."""
    request = app.current_request
    assert request is not None
    return request


@app.route("/health", methods=["GET"])
@handles_errors
def health() -> Response:
    wiring.repository().ping()
    return json_response({"status": "ok", "database": "ok"}, 200)


@app.route("/batches", methods=["POST"], api_key_required=True)
@handles_errors
def submit_batch() -> Response:
    raw = current_request().raw_body
    body = parse_json_body(raw.encode() if isinstance(raw, str) else raw, wiring.settings().max_body_bytes)
    request = parse_batch_request(body)
    logger.append_keys(batch_id=request.batch_id)  # on every line of this request; the middleware removes it
    submission = batches.submit_batch(wiring.repository(), wiring.fanout_plan(), request, wiring.new_e2e_id)
    if submission.created:
        return json_response(submission.to_json(), 201, {"Location": f"/batches/{request.batch_id}"})
    return json_response(submission.to_json(), 200, {"Idempotent-Replayed": "true"})


@app.route("/batches", methods=["GET"], api_key_required=True)
@handles_errors
def list_batches() -> Response:
    params: Mapping[str, str] = current_request().query_params or {}
    listing = queries.list_batches(
        wiring.read_model(),
        created_after=params.get("created_after"),
        created_before=params.get("created_before"),
        status=params.get("status"),
        limit=paging.parse_limit(params.get("limit")),
        cursor=params.get("cursor"),
    )
    return json_response(listing, 200)


@app.route("/batches/{batch_id}", methods=["GET"], api_key_required=True)
@handles_errors
def get_batch(batch_id: str) -> Response:
    params: Mapping[str, str] = current_request().query_params or {}
    page = queries.get_batch(
        wiring.read_model(),
        batch_id,
        limit=paging.parse_limit(params.get("limit")),
        cursor=params.get("cursor"),
        status=params.get("status"),
    )
    return json_response(page, 200)


@app.route("/batches/{batch_id}/report", methods=["GET"], api_key_required=True)
@handles_errors
def get_report(batch_id: str) -> Response:
    request = current_request()
    if queries.wants_csv(request.headers.get("accept")):
        body = queries.report_csv(wiring.read_model(), batch_id)
        return Response(body=body, status_code=200, headers={"Content-Type": "text/csv; charset=utf-8"})
    params: Mapping[str, str] = request.query_params or {}
    report = queries.get_report(
        wiring.read_model(),
        batch_id,
        limit=paging.parse_limit(params.get("limit"), queries.REPORT_PAGE),
        cursor=params.get("cursor"),
    )
    return json_response(report, 200)


@app.route("/payouts", methods=["GET"], api_key_required=True)
@handles_errors
def find_payouts() -> Response:
    params: Mapping[str, str] = current_request().query_params or {}
    found = queries.find_payouts(
        wiring.read_model(),
        external_id=params.get("external_id"),
        user_id=params.get("user_id"),
        limit=paging.parse_limit(params.get("limit")),
        cursor=params.get("cursor"),
    )
    return json_response(found, 200)


@app.route("/payouts/{payout_id}", methods=["GET"], api_key_required=True)
@handles_errors
def get_payout(payout_id: str) -> Response:
    return json_response(batches.get_payout(wiring.repository(), payout_id), 200)


@app.route("/providers/efi/webhook", methods=["POST"])
@handles_errors
def efi_webhook() -> Response:
    """Efí's callbacks: no API key; the secret of the registered URL (README: Efí)."""
    request = current_request()
    raw = request.raw_body
    return efi_webhook_handle(
        request.query_params,
        raw.encode() if isinstance(raw, str) else raw,
        wiring.efi_webhook_secret(),
        wiring.transitions(),
    )


def _json_body() -> object:
    raw = current_request().raw_body
    return parse_json_body(raw.encode() if isinstance(raw, str) else raw, wiring.settings().max_body_bytes)


@app.route("/webhook-endpoints", methods=["POST"], api_key_required=True)
@handles_errors
def create_webhook_endpoint() -> Response:
    s = wiring.settings()
    created = webhooks.create_endpoint(wiring.webhook_store(), _json_body(), resolve, s.webhooks_allow_http_loopback)
    return json_response(created, 201, {"Location": f"/webhook-endpoints/{created['id']}"})


@app.route("/webhook-endpoints", methods=["GET"], api_key_required=True)
@handles_errors
def list_webhook_endpoints() -> Response:
    return json_response(webhooks.list_endpoints(wiring.webhook_store()), 200)


@app.route("/webhook-endpoints/{endpoint_id}", methods=["GET"], api_key_required=True)
@handles_errors
def get_webhook_endpoint(endpoint_id: str) -> Response:
    return json_response(webhooks.get_endpoint(wiring.webhook_store(), endpoint_id), 200)


@app.route("/webhook-endpoints/{endpoint_id}", methods=["PATCH"], api_key_required=True)
@handles_errors
def update_webhook_endpoint(endpoint_id: str) -> Response:
    s = wiring.settings()
    updated = webhooks.update_endpoint(
        wiring.webhook_store(), endpoint_id, _json_body(), resolve, s.webhooks_allow_http_loopback
    )
    return json_response(updated, 200)


@app.route("/webhook-endpoints/{endpoint_id}", methods=["DELETE"], api_key_required=True)
@handles_errors
def delete_webhook_endpoint(endpoint_id: str) -> Response:
    webhooks.delete_endpoint(wiring.webhook_store(), endpoint_id)
    return Response(body="", status_code=204)


@app.route("/webhook-endpoints/{endpoint_id}/rotate-secret", methods=["POST"], api_key_required=True)
@handles_errors
def rotate_webhook_secret(endpoint_id: str) -> Response:
    overlap = wiring.settings().webhook_secret_overlap_seconds
    return json_response(webhooks.rotate_secret(wiring.webhook_store(), endpoint_id, overlap), 200)


@app.route("/webhook-endpoints/{endpoint_id}/deliveries", methods=["GET"], api_key_required=True)
@handles_errors
def list_webhook_deliveries(endpoint_id: str) -> Response:
    params: Mapping[str, str] = current_request().query_params or {}
    page = webhooks.list_deliveries(
        wiring.webhook_store(), endpoint_id, paging.parse_limit(params.get("limit")), params.get("cursor")
    )
    return json_response(page, 200)


@app.route("/events/{event_id}/redeliver", methods=["POST"], api_key_required=True)
@handles_errors
def redeliver_event(event_id: str) -> Response:
    return json_response(webhooks.redeliver(wiring.webhook_store(), event_id), 202)


@app.on_sqs_message(queue="payouts-fanout", batch_size=1)
@observed
def fanout(event: SQSEvent) -> PartialItemFailureResponse:
    return handle_fanout_event(event.to_dict(), event.context)


@app.on_sqs_message(queue="payouts", batch_size=10)
@observed
def settle(event: SQSEvent) -> PartialItemFailureResponse:
    return handle_settle_event(event.to_dict(), event.context)


@app.on_sqs_message(queue="payouts-dlq", batch_size=10)
@observed
def dead_letters(event: SQSEvent) -> PartialItemFailureResponse:
    return handle_dead_letter_event(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES))
@observed
def sweeper(event: CloudWatchEvent) -> dict[str, int]:
    s = wiring.settings()
    report = recovery.sweep(
        wiring.repository(),
        wiring.queue(),
        wiring.outbox(),
        wiring.fanout_queue(),
        grace_seconds=s.sweep_grace_seconds,
        stale_seconds=s.sweep_stale_seconds,
        limit=s.sweep_limit,
        dead_letters=wiring.dead_letters(),
        lost_seconds=s.sweep_lost_seconds,
    )
    report["open_too_long"] = watch.open_too_long(wiring.open_payouts(), s.open_payout_alarm_seconds)
    return report


@app.schedule(Rate(1, unit=Rate.MINUTES))
@observed
def poll_confirmations(event: CloudWatchEvent) -> dict[str, object]:
    """Asks the provider about payouts it accepted and has not confirmed for a while (a lost webhook)."""
    s = wiring.settings()
    if s.pix_provider != "efi":
        return {"skipped": s.pix_provider}
    return dict(
        confirmations.poll(
            wiring.transitions(),
            wiring.provider(),
            older_than_seconds=s.poll_after_seconds,
            limit=s.poll_limit,
            concurrency=s.provider_concurrency,
        )
    )


@app.on_sqs_message(queue="webhook-deliveries", batch_size=10)
@observed
def webhook_deliveries(event: SQSEvent) -> dict[str, list[dict[str, str]]]:
    return handle_delivery_event(event.to_dict(), event.context)


@app.schedule(Rate(1, unit=Rate.MINUTES))
@observed
def webhook_relay(event: CloudWatchEvent) -> dict[str, int]:
    """Every minute, and then polling for most of it: recorded events become deliveries on the queue."""
    return handle_relay(event.context)


@app.schedule(Cron(0, 3, "*", "*", "?", "*"))
@observed
def reconciliation(event: CloudWatchEvent) -> dict[str, object]:
    """At 03:00 UTC: the provider's sends of the day before against our payouts (README: Reconciliation)."""
    provider = wiring.settings().pix_provider
    if provider != "efi":
        logger.info(
            "reconciliation skipped: only PIX_PROVIDER=efi has a list to reconcile with", extra={"provider": provider}
        )
        return {"skipped": provider}
    # The event's time, not the clock's: a late or retried run still reconciles the day it was meant for.
    since, until = previous_utc_day(datetime.fromisoformat(event.time))
    return reconcile(wiring.provider_sends(), wiring.reconcile_queries(), since, until).summary()
