"""Settings read from the environment: defaults and overrides of the sending set-up."""

from __future__ import annotations

from chalicelib.settings import Settings


def test_a_fan_out_task_covers_a_quarter_of_the_largest_batch_and_sends_over_eight_threads() -> None:
    settings = Settings.from_env({})
    assert settings.fanout_range_items == 2500
    assert settings.enqueue_workers == 8


def test_fan_out_ranges_and_threads_can_be_set() -> None:
    settings = Settings.from_env({"FANOUT_RANGE_ITEMS": "100", "ENQUEUE_WORKERS": "3", "FANOUT_QUEUE_URL": "q"})
    assert (settings.fanout_range_items, settings.enqueue_workers, settings.fanout_queue_url) == (100, 3, "q")


def test_the_receive_budget_sits_far_above_the_provider_budget() -> None:
    # Receives are spent by crashes, held locks and outages too: they must never be what fails a payout.
    settings = Settings.from_env({})
    assert settings.max_receive_count >= 10 * settings.max_provider_attempts
    assert settings.infra_retry_max_seconds <= settings.retry_max_seconds


def test_the_lost_message_window_outlasts_a_settle_invocation_and_undercuts_the_stale_one() -> None:
    settings = Settings.from_env({})
    settle_timeout = 30  # .chalice/config.json
    assert 2 * settle_timeout <= settings.sweep_lost_seconds < settings.sweep_stale_seconds
