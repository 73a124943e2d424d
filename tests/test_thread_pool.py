"""The web worker's thread pool (config.workers): a request goes to the thread that went
idle last, so one client's requests one after another run on one thread (and so one
database connection), while requests at once get threads of their own up to the
limit, and the rest wait their turn."""

import threading

import pytest

from config.workers import RecentlyIdlePool


def thread_name() -> str:
    return threading.current_thread().name


@pytest.fixture
def pool():
    pool = RecentlyIdlePool(3)
    yield pool
    pool.shutdown()


def test_requests_one_after_another_run_on_the_thread_that_went_idle_last(pool):
    # Three at once start three threads.
    release = threading.Event()
    busy = [pool.submit(lambda: (release.wait(5), thread_name())[1]) for _ in range(3)]
    release.set()
    names = {future.result(5) for future in busy}
    assert len(names) == 3

    # One at a time afterwards: always the same thread, the one that finished last.
    sequential = [pool.submit(thread_name).result(5) for _ in range(20)]
    assert len(set(sequential)) == 1
    assert sequential[0] in names


def test_no_more_threads_than_the_limit(pool):
    release = threading.Event()

    def hold():
        release.wait(5)
        return thread_name()

    held = [pool.submit(hold) for _ in range(3)]
    waiting = [pool.submit(thread_name) for _ in range(20)]
    assert not any(future.done() for future in waiting)
    release.set()
    names = {future.result(5) for future in held}
    assert len(names) == 3
    assert {future.result(5) for future in waiting} <= names


def test_jobs_wait_for_a_thread_in_the_order_they_came():
    pool = RecentlyIdlePool(1)
    release = threading.Event()
    order = []
    first = pool.submit(lambda: (release.wait(5), order.append(0)))
    waiting = [pool.submit(order.append, n) for n in range(1, 8)]
    release.set()
    first.result(5)
    for future in waiting:
        future.result(5)
    assert order == list(range(8))
    pool.shutdown()


def test_a_failing_job_hands_its_exception_to_its_future_and_the_thread_goes_on(pool):
    def fail():
        raise ValueError("broken request")

    failed = pool.submit(fail)
    with pytest.raises(ValueError, match="broken request"):
        failed.result(5)
    assert pool.submit(lambda: 42).result(5) == 42


def test_done_callbacks_run_as_gunicorn_expects(pool):
    called = threading.Event()
    seen = []
    future = pool.submit(lambda: "kept alive")
    future.add_done_callback(lambda f: (seen.append(f.result()), called.set()))
    assert called.wait(5)
    assert seen == ["kept alive"]


def test_shutdown_stops_idle_threads_and_refuses_new_jobs():
    pool = RecentlyIdlePool(2)
    thread = pool.submit(threading.current_thread).result(5)
    assert thread.is_alive() and thread.name.startswith("request-")

    pool.shutdown()

    thread.join(5)
    assert not thread.is_alive()
    with pytest.raises(RuntimeError):
        pool.submit(thread_name)
