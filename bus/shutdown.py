"""Graceful stop on SIGTERM for the long-running processes (workers, the relay, the scheduler).

The first SIGTERM (or SIGINT) asks the process to stop: it finishes what it holds (a worker its
batch, the relay the confirms it waits for, the scheduler its job) and exits 0. Stopping is
bounded: after ``STOP_GRACE_SECONDS``, or at a second signal, the process exits at once with
``EXIT_CUT_SHORT``. That is safe by design: what a worker did not ack is handed out again and
its inbox skips what had committed; what the relay did not mark sent is published again.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType

from django.conf import settings

logger = logging.getLogger(__name__)

# 128 + SIGTERM, the status of a process ended by the signal: it did not finish its stop.
EXIT_CUT_SHORT = 143


def on_stop_signals(
    stop: Callable[[], None],
    *,
    name: str,
    grace: float | None = None,
    last_words: Callable[[], None] | None = None,
) -> None:
    """On SIGTERM/SIGINT call ``stop()`` (which must only ask, or wait for the work in hand);
    a second signal, or ``grace`` seconds (``STOP_GRACE_SECONDS``) later, exit at once, after
    ``last_words()`` (e.g. releasing a lock). Call from the main thread."""
    bound = settings.STOP_GRACE_SECONDS if grace is None else grace
    asked = threading.Event()

    def cut_short(reason: str) -> None:
        logger.warning("%s exits before it finished stopping: %s", name, reason, extra={"stopping": name})
        if last_words is not None:
            try:
                last_words()
            except Exception:
                logger.exception("%s: cleaning up before the exit failed", name)
        logging.shutdown()
        os._exit(EXIT_CUT_SHORT)

    def handle(signum: int, frame: FrameType | None) -> None:
        if asked.is_set():
            cut_short(f"a second {signal.Signals(signum).name}")
        asked.set()
        logger.info("%s stopping: finishing the work in hand (at most %.0f s)", name, bound, extra={"stopping": name})
        timer = threading.Timer(bound, cut_short, args=[f"still busy after {bound:.0f} s"])
        timer.daemon = True  # a process that stopped in time exits without waiting for it
        timer.start()
        stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
