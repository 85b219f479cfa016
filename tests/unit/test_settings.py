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
