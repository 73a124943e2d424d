"""gunicorn's gthread worker, with a thread pool that gives each request to the thread
that went idle last.

gthread hands every request of a keep-alive connection to its thread pool. Python's
pool wakes its idle threads in turn, so consecutive requests run on different threads,
each with its own database connection and so its own PostgreSQL backend: the caches of
every one of them go cold between requests, and a registration costs about a fifth
more CPU than on a sync worker (bench/README.md). Taking the most recently idle thread
keeps the few threads the load needs warm, while the others still serve whatever a
slow reader or a slow upload holds.
"""

import threading
from collections import deque
from concurrent.futures import Future

from gunicorn.workers.gthread import ThreadWorker as GthreadWorker


class _Thread:
    __slots__ = ("job", "wake")

    def __init__(self):
        self.job = None
        self.wake = threading.Semaphore(0)


class RecentlyIdlePool:
    """A pool of at most max_workers threads, started as the load needs them. A job goes
    to the most recently idle thread, or waits in order for the next one to finish.
    Offers what gthread uses of concurrent.futures.ThreadPoolExecutor: submit() and
    shutdown()."""

    def __init__(self, max_workers: int):
        self._max_workers = max_workers
        self._lock = threading.Lock()
        self._idle: list[_Thread] = []  # the last one went idle last
        self._waiting: deque = deque()
        self._started = 0
        self._shut_down = False

    def submit(self, fn, *args) -> Future:
        future = Future()
        job = (future, fn, args)
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot submit a job after shutdown")
            if self._idle:
                thread = self._idle.pop()
                thread.job = job
                thread.wake.release()
                return future
            if self._started < self._max_workers:
                self._started += 1
                thread = _Thread()
                thread.job = job
                threading.Thread(
                    target=self._serve, args=(thread,), name=f"request-{self._started}", daemon=True
                ).start()
                thread.wake.release()
                return future
            self._waiting.append(job)
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the idle threads, and the others when they finish their job. Jobs still
        waiting are cancelled if cancel_futures, otherwise run first."""
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                while self._waiting:
                    self._waiting.popleft()[0].cancel()
            for thread in self._idle:
                thread.job = None
                thread.wake.release()
            self._idle.clear()

    def _serve(self, thread: _Thread) -> None:
        while True:
            thread.wake.acquire()
            job = thread.job
            while job is not None:
                future, fn, args = job
                job = None
                if future.set_running_or_notify_cancel():
                    try:
                        result = fn(*args)
                    except BaseException as exc:  # noqa: BLE001 - handed to the future
                        future.set_exception(exc)
                    else:
                        future.set_result(result)
                    del future, fn, args
                with self._lock:
                    if self._waiting:
                        job = self._waiting.popleft()
                    elif self._shut_down:
                        return
                    else:
                        thread.job = None
                        self._idle.append(thread)
            if self._shut_down and thread.job is None:
                return


class ThreadWorker(GthreadWorker):
    """gthread, whose requests go to the most recently idle thread. Set as
    worker_class = "config.workers.ThreadWorker"."""

    def get_thread_pool(self):
        return RecentlyIdlePool(self.cfg.threads)
