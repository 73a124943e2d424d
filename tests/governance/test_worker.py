"""The gates on a real Celery worker process, real Redis and real PostgreSQL,
including a worker killed mid-check and a broker that goes away."""

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from fairlearn.metrics import demographic_parity_difference, demographic_parity_ratio

from audits.models import AuditEvent
from audits.selectors import verify_stored_chain
from config.celery import app
from governance.models import CheckRun, PromotionRequest
from governance.services import check_runs_sweep
from governance.tasks import check_run_execute
from tests.evaluation_sets import binary_set
from tests.keys import production_environment

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 90, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


class Redis:
    """A private redis-server, so a test may stop and restart its broker."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(self._answers, 10, "redis")

    def stop(self):
        self.process.terminate()
        self.process.wait(10)

    def drained(self) -> bool:
        """No task waiting in the queue and none delivered but unacknowledged."""
        import redis

        client = redis.Redis.from_url(self.url)
        return client.llen("celery") == 0 and client.hlen("unacked") == 0

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Worker:
    """`celery -A config worker` in its own process group, on the test database."""

    def __init__(self, broker: str, log: Path):
        db = connection.settings_dict
        host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
        self.env = production_environment(
            DATABASE_URL=f"postgresql://{db['USER']}@{host}/{db['NAME']}",
            REDIS_URL=broker,
            CELERY_BROKER_URL=broker,
            MEDIA_ROOT=str(settings.MEDIA_ROOT),
            CELERY_VISIBILITY_TIMEOUT="5",
        )
        self.log = log
        self.process = None

    def start(self):
        offset = self.log.stat().st_size if self.log.exists() else 0
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=prefork",
                "--concurrency=1",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-n",
                f"test-{os.getpid()}-{time.monotonic_ns()}@%h",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: b" ready." in self.log.read_bytes()[offset:], 60, "the worker")

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


def use_broker(url: str):
    """Point this process's Celery app at `url` (its connection pools are rebuilt)."""
    app.conf.broker_url = url
    app.conf.task_always_eager = False
    if app._pool is not None:
        app._pool.force_close_all()
    app._after_fork()


@pytest.fixture
def broker(tmp_path):
    redis = Redis(tmp_path)
    redis.start()
    previous = app.conf.broker_url
    use_broker(redis.url)
    yield redis
    use_broker(previous)
    if redis.process.poll() is None:
        redis.stop()


@pytest.fixture
def worker(broker, tmp_path):
    process = Worker(broker.url, tmp_path / "worker.log")
    process.start()
    yield process
    process.stop()


def status(request_id: int) -> str:
    return PromotionRequest.objects.get(pk=request_id).status


def settled(request_id: int) -> bool:
    return status(request_id) not in ("checking",)


def test_a_fair_set_passes_to_awaiting_approval(world, worker):
    request = world.request(run_tasks=False)
    wait_for(lambda: settled(request["id"]), what="the checks")
    body = world.get(request["id"])
    assert body["status"] == "awaiting_approval", body["status_reason"]
    # The world's artifacts are s3:// URIs, which the integrity check cannot read.
    assert {c["name"]: c["status"] for c in body["checks"]} == {
        "fairness": "passed",
        "integrity": "unverified",
        "validation": "passed",
    }


def test_a_biased_set_ends_checks_failed_with_the_figures(world, worker):
    frame = binary_set(rows=3000, rates={"a": 0.6, "b": 0.3}, seed=21)
    world.add_version("biased", frame=frame)
    request = world.request(version=3, run_tasks=False)
    wait_for(lambda: settled(request["id"]), what="the checks")
    body = world.get(request["id"])
    assert body["status"] == "checks_failed"
    fairness = next(c for c in body["checks"] if c["name"] == "fairness")
    assert fairness["status"] == "failed"
    figures = fairness["results"]["features"]["group"]
    expected_difference = demographic_parity_difference(
        frame.y_true, frame.y_pred, sensitive_features=frame.group
    )
    assert abs(figures["demographic_parity_difference"] - expected_difference) < 1e-9
    expected_ratio = demographic_parity_ratio(
        frame.y_true, frame.y_pred, sensitive_features=frame.group
    )
    assert abs(figures["demographic_parity_ratio"] - expected_ratio) < 1e-9
    event = AuditEvent.objects.get(action="check.failed")
    assert event.data["results"]["features"]["group"] == figures


def test_a_task_delivered_twice_writes_one_result(world, worker, broker):
    request = world.request(run_tasks=False)
    for run in CheckRun.objects.filter(request_id=request["id"]):
        check_run_execute.delay(run.pk)
    wait_for(lambda: settled(request["id"]), what="the checks")
    wait_for(broker.drained, what="the duplicate deliveries to be consumed")
    assert AuditEvent.objects.filter(action="check.started").count() == 3
    assert AuditEvent.objects.filter(action="check.passed").count() == 2
    assert AuditEvent.objects.filter(action="check.unverified").count() == 1
    assert AuditEvent.objects.filter(action="promotion.checks_passed").count() == 1
    assert sorted(CheckRun.objects.values_list("attempts", flat=True)) == [1, 1, 1]


def test_a_worker_killed_mid_check_then_restarted_completes_the_request(world, worker):
    world.add_version("big", frame=binary_set(rows=400_000, seed=4))
    request = world.request(version=3, run_tasks=False)
    fairness = CheckRun.objects.get(request_id=request["id"], name="fairness")
    wait_for(
        lambda: CheckRun.objects.get(pk=fairness.pk).status == "running", what="fairness to start"
    )
    worker.kill()
    assert CheckRun.objects.get(pk=fairness.pk).status == "running"

    worker.start()
    others = CheckRun.objects.exclude(pk=fairness.pk)
    wait_for(
        lambda: set(others.values_list("status", flat=True)) == {"passed", "unverified"},
        what="other checks",
    )
    # What beat does once the killed run has outlived its time limit:
    later = timezone.now() + timedelta(seconds=settings.CHECK_TIME_LIMIT + 60)
    assert check_runs_sweep(now=later)["requeued"] == 1
    wait_for(lambda: settled(request["id"]), 120, "the checks")
    assert status(request["id"]) == "awaiting_approval"
    run = CheckRun.objects.get(pk=fairness.pk)
    assert (run.status, run.attempts) == ("passed", 2)
    assert AuditEvent.objects.filter(action="check.requeued").count() == 1
    assert verify_stored_chain().ok


def test_checks_queued_while_redis_was_down_run_once_it_is_back(world, worker, broker):
    broker.stop()
    response = world.call(
        "ci",
        "post",
        "/api/v1/promotions/",
        {"model": "fraud", "version": 1, "target_stage": "production"},
        run_tasks=False,
    )
    assert response.status_code == 201
    request_id = response.json()["id"]
    time.sleep(1)
    assert set(CheckRun.objects.values_list("status", flat=True)) == {"queued"}

    broker.start()
    later = timezone.now() + timedelta(seconds=settings.CHECK_REDISPATCH_AFTER + 1)
    assert check_runs_sweep(now=later)["redispatched"] == 3
    wait_for(lambda: settled(request_id), 90, "the checks")
    assert status(request_id) == "awaiting_approval"
