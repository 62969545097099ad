"""The process's run-time resources: usable CPUs, thread priority and heap growth of the streaming path."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

__all__ = ["IO_THREAD_NICE", "limit_heap_growth", "lower_thread_priority", "usable_cpus"]

#: Nice increment of the threads that only read and write (Linux), so that they take the cores the engine leaves
#: idle rather than preempting its threads (docs/decisions/2026-11-22-io-thread-priority.md).
IO_THREAD_NICE = 10


def usable_cpus() -> int:
    """CPUs this process may run on (affinity mask; ``os.cpu_count()`` where there is none)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def lower_thread_priority(increment: int = IO_THREAD_NICE) -> bool:
    """Linux: raise the calling thread's nice value by ``increment`` (at most 19); other threads keep theirs.

    For the reader and writer threads that share the cores with the engine: when an engine thread and an I/O thread
    compete for a core, the engine thread runs, and its partner threads do not wait at the next barrier of the
    operator for a thread that was preempted. The measurements (``s2sr superres`` 1 x 2 on a 2-core VM, 2048 px
    scene) are in docs/decisions/2026-11-22-io-thread-priority.md.
    Returns whether it was applied (False on other systems or when not permitted)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + int(increment)))
    except (OSError, AttributeError):
        return False
    return True


def limit_heap_growth(mmap_threshold: int = 1 << 20) -> bool:
    """Linux/glibc: serve every allocation of ``mmap_threshold`` bytes or more (tiles, windows) with its own
    mapping, handed back to the OS when freed, and keep at most 2 malloc arenas. glibc otherwise raises the mmap
    threshold after each such free (up to 32 MB) and gives every thread its own arena, so tiles freed on the
    worker threads stay in fragmented heaps and the peak RSS grows with the scene (with 2 tile workers: 720 MB at
    2560 px, 1049 MB at 5120 px; docs/decisions/2026-11-22-parallel-workers.md). Returns whether the settings were
    applied (False elsewhere)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        m_mmap_threshold, m_arena_max = -3, -8  # <malloc.h>
        return bool(libc.mallopt(m_mmap_threshold, int(mmap_threshold))) and bool(libc.mallopt(m_arena_max, 2))
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
