"""How many CPU threads the model's forward passes use: as many as other processes leave free.

Why: torch splits every operator of a forward pass statically between its threads and waits for
all of them at the end (an OpenMP barrier, spinning). When another process keeps a core busy, one
of torch's threads is descheduled for a time slice (milliseconds) in the middle of operators that
take tens of microseconds, and every operator waits for it. Measured on 2 cores with one other
process burning a core: the prefix-tree engine fell from 12.5 to 2.6 prompts/s with 2 threads,
slower than the same work on 1 thread with nothing else running (6.5). With as many threads as
there are free cores no operator waits for a thread that is not running.

Free cores are measured, not guessed: the busy time of the CPUs this process may run on
(``/proc/stat``) minus this process's own CPU time, over the last half second. Where
``/proc/stat`` does not exist (not Linux) the thread count is left alone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_STAT = Path("/proc/stat")
_IDLE_FIELDS = (3, 4)  # idle, iowait: every other field of a cpuN line is busy time


class ThreadGovernor:
    """Chooses a thread count between 1 and ``max_threads`` from the cores other processes use."""

    def __init__(self, max_threads: int, interval: float = 0.5) -> None:
        self.max_threads = max(1, max_threads)
        self.interval = interval
        cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        self._names = {f"cpu{i}" for i in cpus}
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self.current = self.max_threads
        self._last = self._sample()

    def _sample(self) -> tuple[float, float, float] | None:
        """(wall time, busy seconds of our CPUs, this process's CPU seconds), or None off Linux."""
        if not self._names:
            return None
        try:
            lines = _STAT.read_text().splitlines()
        except OSError:
            return None
        busy = 0
        for line in lines:
            name, *fields = line.split()
            if name in self._names:
                values = [int(v) for v in fields[:8]]
                busy += sum(values) - sum(values[i] for i in _IDLE_FIELDS)
        return time.monotonic(), busy / self._tick, time.process_time()

    def threads(self) -> int:
        """The thread count to use now (re-measured at most every ``interval`` seconds)."""
        if self._last is None:
            return self.current
        wall, busy, own = self._last
        if time.monotonic() - wall < self.interval:
            return self.current
        now = self._sample()
        if now is None:
            return self.current
        others = max(0.0, (now[1] - busy) - (now[2] - own)) / max(now[0] - wall, 1e-9)
        free = len(self._names) - others
        self.current = max(1, min(self.max_threads, int(free + 0.5)))
        self._last = now
        return self.current


def free_threads(wait: float = 0.5) -> int:
    """The cores other processes leave free now (measured over ``wait`` seconds), at most torch's
    thread count: what a run that must keep one thread count throughout (``ava score``: its
    numbers depend, in the last bits, on how many threads split each operator) starts with."""
    import torch

    governor = ThreadGovernor(torch.get_num_threads(), interval=wait)
    time.sleep(wait if governor._last is not None else 0)
    return governor.threads()


@contextmanager
def cpu_threads(device: Any, pinned: int | None = None) -> Iterator[Callable[[], None]]:
    """For the block: a function to call before each forward pass, which sets torch's thread count
    to the free cores (or to ``pinned``); the caller's thread count is restored afterwards.
    Off the CPU the function does nothing."""
    import torch

    before = torch.get_num_threads()
    governor = ThreadGovernor(before) if getattr(device, "type", device) == "cpu" and pinned is None else None

    def adjust() -> None:
        if governor is not None and governor.threads() != torch.get_num_threads():
            torch.set_num_threads(governor.current)

    if pinned is not None and getattr(device, "type", device) == "cpu":
        torch.set_num_threads(pinned)
    try:
        yield adjust
    finally:
        torch.set_num_threads(before)
