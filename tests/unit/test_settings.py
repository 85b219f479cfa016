"""Settings read from the environment: defaults and overrides of the sending set-up."""

from __future__ import annotations

import os

from chalicelib.settings import Settings, usable_cpus


def test_senders_default_to_one_process_per_usable_cpu_up_to_four() -> None:
    settings = Settings.from_env({})
    assert settings.enqueue_processes == min(4, len(os.sched_getaffinity(0)))
    assert settings.enqueue_workers == 8


def test_sending_processes_and_threads_can_be_set() -> None:
    settings = Settings.from_env({"ENQUEUE_PROCESSES": "1", "ENQUEUE_WORKERS": "3"})
    assert (settings.enqueue_processes, settings.enqueue_workers) == (1, 3)


def test_usable_cpus_is_capped_and_never_zero() -> None:
    assert usable_cpus(1) == 1
    assert 1 <= usable_cpus(64) <= len(os.sched_getaffinity(0))
