"""With DEBUG off, the service starts only with a secret key of its own and an audit
signing key it can read: `manage.py check` fails naming the variable, gunicorn serves
nothing, and Celery's worker and beat exit. Each runs as its own process, as in
production, on a SQLite file of the test's own."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings

from tests.keys import production_environment

ROOT = Path(__file__).resolve().parent.parent
# Time for a process to import Django and run the checks on a busy shared machine.
START_TIMEOUT = 90

# A PEM whose body is not a key; "\\n" stands for line breaks, as the variable allows.
MALFORMED_PEM = "-----BEGIN PRIVATE KEY-----\\nbm90IGEga2V5\\n-----END PRIVATE KEY-----"
BAD = {
    "no SECRET_KEY": ({"SECRET_KEY": None}, "SECRET_KEY"),
    "the development SECRET_KEY": (
        {"SECRET_KEY": settings.DEVELOPMENT_SECRET_KEY},
        "SECRET_KEY",
    ),
    "a django-insecure SECRET_KEY": (
        {"SECRET_KEY": "django-insecure-" + "x" * 50},
        "SECRET_KEY",
    ),
    "no AUDIT_SIGNING_KEY": ({"AUDIT_SIGNING_KEY": None}, "AUDIT_SIGNING_KEY"),
    "a malformed AUDIT_SIGNING_KEY": ({"AUDIT_SIGNING_KEY": MALFORMED_PEM}, "AUDIT_SIGNING_KEY"),
}


@pytest.fixture
def environment(tmp_path):
    """Production's environment (DEBUG off, real keys), on a SQLite file and no broker."""

    def build(changes: dict[str, str | None] | None = None) -> dict[str, str]:
        env = production_environment(
            DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
            REDIS_URL="",
            CELERY_BROKER_URL="",
        )
        for name, value in (changes or {}).items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        return env

    return build


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=START_TIMEOUT,
        check=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answer(port: int) -> int | None:
    """The HTTP status /healthz answers with, or None when nothing answers."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (OSError, urllib.error.URLError):
        return None


def gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "config.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def test_with_its_keys_the_service_passes_its_checks_and_serves(environment, tmp_path):
    env = environment()
    result = run(["manage.py", "check"], env)
    assert result.returncode == 0, result.stderr
    assert "modelgov." not in result.stdout + result.stderr

    port = free_port()
    process = gunicorn(env, port, tmp_path / "gunicorn.log")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while answer(port) != 200 and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer(port) == 200, (tmp_path / "gunicorn.log").read_text()
    finally:
        stop(process)


@pytest.mark.parametrize(("changes", "variable"), BAD.values(), ids=BAD.keys())
def test_manage_py_check_fails_naming_the_variable(environment, changes, variable):
    result = run(["manage.py", "check"], environment(changes))
    assert result.returncode != 0
    assert "modelgov.E00" in result.stderr
    assert variable in result.stderr
    # Only the variable at fault is named.
    other = "AUDIT_SIGNING_KEY" if variable == "SECRET_KEY" else "SECRET_KEY"
    assert f"{other} is" not in result.stderr


@pytest.mark.parametrize(("changes", "variable"), BAD.values(), ids=BAD.keys())
def test_gunicorn_exits_and_serves_nothing(environment, changes, variable, tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = gunicorn(environment(changes), port, log)
    answers = []
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while process.poll() is None and time.monotonic() < deadline:
            answers.append(answer(port))
            time.sleep(0.2)
        assert process.poll() is not None, "gunicorn kept running"
    finally:
        stop(process)
    assert process.returncode != 0
    assert {a for a in answers if a is not None} == set()
    assert answer(port) is None
    assert variable in log.read_text()


def test_migrate_stops_before_migrating(environment):
    result = run(["manage.py", "migrate", "--noinput"], environment({"SECRET_KEY": None}))
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr
    assert "Applying" not in result.stdout


def celery(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return run(["-m", "celery", "-A", "config", *args], env)


WORKER = ["worker", "--pool=solo", "--without-gossip", "--without-mingle", "--without-heartbeat"]


@pytest.mark.parametrize(
    ("changes", "variable"),
    [BAD["a malformed AUDIT_SIGNING_KEY"], BAD["no SECRET_KEY"]],
    ids=["a malformed AUDIT_SIGNING_KEY", "no SECRET_KEY"],
)
def test_the_celery_worker_refuses_to_start(environment, changes, variable):
    result = celery(WORKER, environment(changes))
    assert result.returncode != 0
    assert variable in result.stderr
    assert " ready." not in result.stdout + result.stderr


def test_the_celery_beat_refuses_to_start(environment, tmp_path):
    schedule = tmp_path / "beat-schedule"
    result = celery(["beat", "-s", str(schedule)], environment({"AUDIT_SIGNING_KEY": None}))
    assert result.returncode != 0
    assert "AUDIT_SIGNING_KEY" in result.stderr


def test_with_its_keys_the_celery_worker_starts(environment, tmp_path):
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "config", *WORKER, "--loglevel=INFO"],
        cwd=ROOT,
        env=environment(),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while b" ready." not in log.read_bytes() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        assert b" ready." in log.read_bytes(), log.read_text()
    finally:
        stop(process)
