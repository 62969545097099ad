"""sr_core.runtime: usable CPUs, thread priority and heap growth."""

from __future__ import annotations

import os
import sys

import pytest

from sr_core.runtime import limit_heap_growth, lower_thread_priority, usable_cpus


def test_usable_cpus_and_limit_heap_growth():
    assert 1 <= usable_cpus() <= (os.cpu_count() or 1)
    applied = limit_heap_growth()
    assert isinstance(applied, bool)
    if not sys.platform.startswith("linux"):
        assert applied is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are a Linux feature")
def test_lower_thread_priority_only_lowers_the_calling_thread():
    import threading

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    seen = {}

    def run():
        tid = threading.get_native_id()
        before = os.getpriority(os.PRIO_PROCESS, tid)
        seen["applied"] = lower_thread_priority(5)
        seen["delta"] = os.getpriority(os.PRIO_PROCESS, tid) - before
        seen["capped"] = lower_thread_priority(100) and os.getpriority(os.PRIO_PROCESS, tid) == 19

    t = threading.Thread(target=run)
    t.start()
    t.join()
    assert seen == {"applied": True, "delta": 5, "capped": True}
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
