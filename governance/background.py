"""Tasks with no broker to take them (no REDIS_URL): the web process runs them itself,
once the response of the request that queued them has been sent, so a client never
waits for a gate, and under the soft time limit a Celery worker would apply.

With a broker none of this runs: tasks go to the workers, which apply both limits.
In-process there is no hard limit: a gate stuck inside one C call is interrupted only
when the call returns.
"""

import ctypes
import logging
import threading
from collections.abc import Callable

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.signals import request_finished, request_started

logger = logging.getLogger(__name__)

_local = threading.local()


def after_response(task: Callable[[], object]) -> None:
    """Run `task` once the current request's response is sent; at once outside one
    (a command, a test, a task)."""
    pending = getattr(_local, "pending", None)
    if pending is None:
        within_time_limit(task)
    else:
        pending.append(task)


def within_time_limit(task: Callable[[], object], seconds: float | None = None) -> None:
    """Run `task`, raising SoftTimeLimitExceeded inside it after `seconds`
    (CHECK_SOFT_TIME_LIMIT), as a worker's soft limit does."""
    seconds = settings.CHECK_SOFT_TIME_LIMIT if seconds is None else seconds
    thread = ctypes.c_ulong(threading.get_ident())
    lock = threading.Lock()
    state = {"done": False, "raised": False}

    def interrupt() -> None:
        with lock:
            if not state["done"]:
                state["raised"] = True
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    thread, ctypes.py_object(SoftTimeLimitExceeded)
                )

    timer = threading.Timer(seconds, interrupt)
    timer.daemon = True
    timer.start()
    try:
        task()
    finally:
        with lock:
            state["done"] = True
            if state["raised"]:
                # Raised but perhaps not yet delivered: it must not surface later.
                ctypes.pythonapi.PyThreadState_SetAsyncExc(thread, None)
        timer.cancel()


def _request_started(**kwargs) -> None:
    _local.pending = []


def _request_finished(**kwargs) -> None:
    pending, _local.pending = getattr(_local, "pending", None), None
    for task in pending or ():
        # The response is sent: a failure can only be logged (the sweep finds the run).
        try:
            within_time_limit(task)
        except Exception:
            logger.exception("A task run after the response failed")


def connect() -> None:
    request_started.connect(_request_started, dispatch_uid="governance.background.started")
    request_finished.connect(_request_finished, dispatch_uid="governance.background.finished")
