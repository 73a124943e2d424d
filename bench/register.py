"""Version registration throughput: modelgov against MLflow's registry or another modelgov.

The services run on this machine against the same PostgreSQL (through its Unix
socket when it has one; --postgres chooses), each in a fresh database
(modelgov_bench, mlflow_bench, and modelgov_bench_baseline side by side; dropped and
re-created at the start of a run and left in place afterwards for inspection). For
each concurrency level the script registers N versions of one fresh model over
HTTP, with one keep-alive connection per concurrent client (reopened whenever the
server closes it), all driven by one thread through a minimal HTTP client that
leaves the cores to the servers, and reports for each system:

- versions per second (N divided by the wall time of the whole batch),
- the median (p50) and 95th percentile (p95) latency of one registration,
- the CPU time per registration of this script, the server's processes and the
  PostgreSQL backends serving its database, and how many cores every other
  process on the machine kept busy meanwhile (a busy neighbour skews the rest),
- the ratio of the first system's versions per second to each other's, and of its
  CPU per registration to theirs,
- for modelgov: the SQL queries one registration runs (counted in-process with
  Django's CaptureQueriesContext around one request through DRF's APIClient) and,
  when PostgreSQL preloads pg_stat_statements, every statement PostgreSQL ran in
  the modelgov database during the first batch divided by N (BEGIN and COMMIT,
  Django's connection health check and foreign-key checks included),
- whether every response was a success, whether each modelgov model holds versions
  1..N with no gap, and whether `manage.py verify_audit` finds its audit chain intact.

Every server runs for the whole benchmark. Each concurrency level is measured in
rounds (10 by default) that alternate between the systems, the first to go
changing every round, and the systems not being measured are paused, so that a
machine whose speed drifts while the benchmark runs (shared machines do, by half
within a minute) slows each alike and the ratio compares them under the same
conditions. A round of modelgov's takes well under a second and one of MLflow's
several, so fewer rounds leave each system's figure to the few moments its rounds
happened to fall in. Before the measured batches each service gets a short warm-up
on a separate model, so that lazy imports and first connections are not counted.

modelgov runs under gunicorn (config.wsgi) with DEBUG=false; MLflow runs as
`mlflow server` (uvicorn, its default 4 workers) from its own virtual
environment in .bench/mlflow-venv, created and filled with a pinned MLflow on
first use. Server logs are written to .bench/.

Side by side, the candidate (this checkout, or --candidate DIR) is measured against
a baseline modelgov in place of MLflow (--with-mlflow keeps MLflow as a third
system): --baseline DIR serves another checkout of the repository (a `git worktree`
of an earlier commit), --baseline-gunicorn and --candidate-gunicorn give each
server its own gunicorn options. Each checkout is served and migrated by this
project's interpreter with the checkout first on the import path, and the script
checks that its packages are imported from there, not from the editable install of
this one. The baseline's ratio is the candidate's versions per second over the
baseline's.

The default gunicorn setting is deploy/gunicorn.conf.py's worker class,
config.workers.ThreadWorker (gthread whose requests go to the most recently idle of
its 4 threads), with 2 workers, one per core of the 2-core machine it was
tuned on: a sync worker is held for as long as its client takes to read the answer,
so one slow download of a streamed export would stop it serving anyone else. With
sync workers, 2 registered fastest at concurrency 8 of 2, 3 and 4: registrations of
one model queue on that model's row lock, and more processes than cores only
preempt the one holding it. --workers, --worker-class, --threads and --keep-alive
change it, or --candidate-gunicorn replaces it whole.

Run from the repository root:

    .venv/bin/python bench/register.py
    .venv/bin/python bench/register.py --versions 500 --concurrency 8
    .venv/bin/python bench/register.py --workers 2 --threads 8 --skip-mlflow
    .venv/bin/python bench/register.py --rounds 1     # each system in one batch per level

    # what deploy's worker costs against sync workers, on this checkout's code
    .venv/bin/python bench/register.py --baseline-gunicorn="--workers 2 --worker-class sync"

    # this checkout against an earlier commit
    git worktree add --detach /tmp/base HEAD~5
    .venv/bin/python bench/register.py --baseline /tmp/base

    # the machine's noise: the same code and settings against themselves
    .venv/bin/python bench/register.py --baseline .

Exit status 0 when every check passed, 1 otherwise.
"""

import argparse
import hashlib
import http.client
import importlib.metadata
import json
import os
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    PYTHON,
    ROOT,
    database_url,
    free_port,
    manage,
    manage_ok,
    production_keys,
    recreate_database,
)

BENCH_DIR = ROOT / ".bench"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
THREAD_WORKER = "config.workers.ThreadWorker"  # deploy/gunicorn.conf.py's worker class
MLFLOW_VENV = BENCH_DIR / "mlflow-venv"
MLFLOW_VERSION = "3.17.2"
MLFLOW_PACKAGES = [f"mlflow=={MLFLOW_VERSION}", "psycopg2-binary==2.9.13"]

MODELGOV_DB = "modelgov_bench"
BASELINE_DB = "modelgov_bench_baseline"
PACKAGES = ("config", "audits", "registry", "governance")
MLFLOW_DB = "mlflow_bench"
WARMUP_VERSIONS = 50
BUSY_NEIGHBOUR = 0.25  # cores other processes may keep busy before the report warns
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

QUERY_COUNT_SNIPPET = """
import os
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

client = APIClient(HTTP_AUTHORIZATION="Bearer " + os.environ["BENCH_TOKEN"])
created = client.post("/api/v1/models/", {"name": "bench-queries"}, format="json")
assert created.status_code == 201, created.content
body = {"artifact_uri": "s3://bucket/q.pkl", "artifact_size": 1234, "framework": "sklearn",
        "metrics": {"auc": 0.91, "f1": 0.8}, "params": {"max_depth": 6}}
url = "/api/v1/models/bench-queries/versions/"
first = client.post(url, {**body, "artifact_sha256": "a" * 64}, format="json")
assert first.status_code == 201, first.content
with CaptureQueriesContext(connection) as queries:
    second = client.post(url, {**body, "artifact_sha256": "b" * 64}, format="json")
assert second.status_code == 201, second.content
statements = [q["sql"] for q in queries.captured_queries]
print(len(statements), sum(sql in ("BEGIN", "COMMIT") for sql in statements))
"""


@dataclass
class Batch:
    system: str
    concurrency: int
    count: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    own_cpu: float = 0.0
    # The same CPU time split by who spent it: this script, the server, PostgreSQL.
    cpu_split: dict[str, float] = field(default_factory=dict)
    other_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.count / self.seconds

    @property
    def other_cores(self) -> float:
        """The cores every other process on the machine kept busy meanwhile."""
        return self.other_cpu / self.seconds

    def percentile(self, p: int) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] if self.latencies else float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[p - 1]


class Server:
    """A service started in its own process group, stopped with everything it forked."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str],
        port: int,
        database: str,
        cwd: Path = ROOT,
    ):
        self.name = name
        self.argv = argv
        self.env = env
        self.port = port
        self.database = database
        self.cwd = cwd
        self.log_path = BENCH_DIR / f"{name}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_ready(self, path: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early; see {self.log_path}")
            conn = connect(self.port, timeout=5)
            try:
                status, _ = request(conn, "GET", path)
            except (OSError, http.client.HTTPException):
                status = None
            finally:
                conn.close()
            if status == 200:
                return
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer {path} in {timeout:.0f}s")

    def cpu_seconds(self) -> dict[int, tuple[str, float]]:
        """CPU used so far by this script, the server's processes and their PostgreSQL
        backends, by pid, each with who it is: "client", "server" or "database"."""
        backend = f" {self.database} ".encode()

        def role(pid: int, group: int, cmdline: bytes) -> str | None:
            if pid == os.getpid():
                return "client"
            if group == self.process.pid:
                return "server"
            return "database" if backend in cmdline else None

        return processes_cpu_seconds(role)

    def pause(self) -> None:
        """Stop every process of the server (SIGSTOP) while another system is measured:
        an idle server's background work (MLflow's job consumers poll their queue)
        would otherwise take CPU from the other's measurement."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGCONT)
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    return (sum(ticks[0:3]) + ticks[5] + ticks[6]) / CLOCK_TICKS


def processes_cpu_seconds(role_of) -> dict[int, tuple[str, float]]:
    """(role, CPU time) by pid of the running processes to which role_of(pid, group,
    cmdline) gives a role."""
    seconds = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline_file:
                cmdline = cmdline_file.read().replace(b"\0", b" ")
        except OSError:
            continue
        # fields[0] is field 3 of proc(5), the state: pgrp (5) is [2], utime (14) [11], stime [12].
        pid = int(entry.name)
        role = role_of(pid, int(fields[2]), cmdline)
        if role is not None:
            seconds[pid] = (role, (int(fields[11]) + int(fields[12])) / CLOCK_TICKS)
    return seconds


def connect(port: int, timeout: float = 60) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def request(conn: http.client.HTTPConnection, method: str, path: str, body=None, headers=None):
    """Send one request and read the whole answer; returns (status, parsed JSON or None)."""
    headers = dict(headers or {})
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    raw = response.read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    return response.status, payload


def post_ok(port: int, path: str, body, headers: dict[str, str], expected: int) -> None:
    """POST a set-up request (not measured); anything but `expected` stops the run."""
    conn = connect(port)
    try:
        status, payload = request(conn, "POST", path, body, headers)
    finally:
        conn.close()
    if status != expected:
        raise RuntimeError(f"POST {path} {body}: HTTP {status}: {payload}")


class LoadConnection:
    """One keep-alive HTTP/1.1 connection, driven by `run_batch`'s event loop, that
    costs the client as little as it can.

    The client shares the machine's cores with the server it measures, so every
    microsecond it spends is taken from the server. http.client builds and parses
    each message through email.parser and several layers of buffering; here a
    request is written as one bytes object and the answer parsed as it arrives, by
    its Content-Length (or chunk by chunk), reconnecting when the server closes the
    connection (as gunicorn's sync workers do after every answer).
    """

    def __init__(self, port: int, timeout: float = 60):
        self.address = ("127.0.0.1", port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.host = f"Host: 127.0.0.1:{port}\r\n".encode()
        self.buffer = b""
        self.index: int | None = None
        self.started = 0.0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def send(self, method: str, path: str, body, headers: dict[str, str]) -> bool:
        """Send one request; True when the connection had to be (re)opened."""
        data = b"" if body is None else json.dumps(body).encode()
        head = [f"{method} {path} HTTP/1.1\r\n".encode(), self.host]
        head += [f"{name}: {value}\r\n".encode() for name, value in headers.items()]
        if body is not None:
            head.append(b"Content-Type: application/json\r\n")
        head.append(f"Content-Length: {len(data)}\r\n\r\n".encode())
        opened = self.sock is None
        if opened:
            self.sock = socket.create_connection(self.address, timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.sock.sendall(b"".join(head) + data)
        return opened

    def receive(self):
        """Read what has arrived; (status, body) once the answer is complete, else None."""
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += chunk
        head, found, rest = self.buffer.partition(b"\r\n\r\n")
        if not found:
            return None
        lines = head.split(b"\r\n")
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip().lower()
        if fields.get(b"transfer-encoding") == b"chunked":
            payload = _dechunked(rest)
            if payload is None:
                return None
        else:
            length = int(fields.get(b"content-length", b"0"))
            if len(rest) < length:
                return None
            payload = rest[:length]
        if fields.get(b"connection") == b"close":
            self.close()
        return int(lines[0].split(b" ", 2)[1]), payload


def _dechunked(buffer: bytes) -> bytes | None:
    """A chunked body, or None while its last chunk has not arrived."""
    payload, position = b"", 0
    while True:
        end = buffer.find(b"\r\n", position)
        if end < 0:
            return None
        size = int(buffer[position:end].split(b";")[0], 16)
        start = end + 2
        if len(buffer) < start + size + 2:
            return None
        payload += buffer[start : start + size]
        position = start + size + 2
        if size == 0:
            return payload


def run_batch(
    batch: Batch, server: Server, count: int, make_request, expected_status: int, first: int = 0
) -> Batch:
    """Send `count` requests (indexes first, first + 1, ...) over batch.concurrency
    connections, each sending its next request as soon as its answer is in, and add
    what they measured to the batch.

    One thread drives every connection through a selector: client threads would
    queue on the interpreter lock when several answers arrive at once, and each
    would answer late, leaving a server worker idle meanwhile.

    Also measures the CPU the benchmark used (client, server, its PostgreSQL
    backends) and what every other process on the machine used meanwhile.
    """
    indexes = iter(range(first, first + count))
    selector = selectors.DefaultSelector()

    def send_next(conn: LoadConnection) -> bool:
        """Start the connection's next request; False when there is none left."""
        while (index := next(indexes, None)) is not None:
            conn.index, conn.started = index, time.perf_counter()
            try:
                method, path, body, headers = make_request(index)
                if conn.send(method, path, body, headers):
                    selector.register(conn.sock, selectors.EVENT_READ, conn)
                return True
            except OSError as exc:
                fail(conn, exc)
        return False

    def drop(conn: LoadConnection) -> None:
        if conn.sock is not None:
            if conn.sock in selector.get_map():
                selector.unregister(conn.sock)
            conn.close()

    def fail(conn: LoadConnection, exc: Exception) -> None:
        drop(conn)
        batch.failures.append(f"#{conn.index}: {type(exc).__name__}: {exc}")

    own_before, busy_before = server.cpu_seconds(), machine_busy_seconds()
    started = time.perf_counter()
    active = sum(send_next(LoadConnection(server.port)) for _ in range(batch.concurrency))
    while active:
        ready = selector.select(timeout=60)
        if not ready:
            raise RuntimeError(f"{server.name} answered nothing for 60 s")
        for key, _ in ready:
            conn = key.data
            sock = conn.sock
            try:
                answer = conn.receive()
            except (OSError, ValueError, IndexError) as exc:
                fail(conn, exc)
                active -= not send_next(conn)
                continue
            if answer is None:
                continue
            batch.latencies.append(time.perf_counter() - conn.started)
            status, payload = answer
            if status != expected_status:
                batch.failures.append(f"#{conn.index}: HTTP {status}: {payload[:500]!r}")
            if conn.sock is None:
                selector.unregister(sock)  # the server closed it; send_next reopens it
            if not send_next(conn):
                drop(conn)
                active -= 1
    seconds = time.perf_counter() - started
    selector.close()
    # Per process, so that a database connection Django recycles mid-batch (and the
    # CPU its backend used before the batch) does not drop out of the difference.
    own_after = server.cpu_seconds()
    own = 0.0
    for pid, (role, cpu) in own_after.items():
        spent = cpu - own_before.get(pid, (role, 0.0))[1]
        batch.cpu_split[role] = batch.cpu_split.get(role, 0.0) + spent
        own += spent
    batch.count += count
    batch.seconds += seconds
    batch.own_cpu += own
    batch.other_cpu += max(0.0, machine_busy_seconds() - busy_before - own)
    return batch


def http_parser() -> str:
    """The HTTP parser gunicorn uses by default: its C extension when installed."""
    try:
        version = importlib.metadata.version("gunicorn_h1c")
    except importlib.metadata.PackageNotFoundError:
        return "gunicorn's own, in Python"
    return f"gunicorn_h1c {version}"


def sha256_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def source_revision(root: Path = ROOT) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} with uncommitted changes" if dirty else head


def preloaded_libraries(server: str) -> str:
    with psycopg.connect(database_url(server, "postgres")) as conn:
        return conn.execute("SHOW shared_preload_libraries").fetchone()[0]


class StatementCounter:
    """Statements PostgreSQL executed in one database, from pg_stat_statements."""

    def __init__(self, server: str, name: str):
        self.url = database_url(server, name)
        self.name = name

    def install(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")

    def reset(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_stat_statements_reset()")

    def total(self) -> int:
        with psycopg.connect(self.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements"
                " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = %s)"
                " AND query NOT LIKE %s",
                (self.name, "%pg_stat_statements%"),
            ).fetchone()
        return int(row[0])


def listed_versions(port: int, headers: dict[str, str], model: str) -> list[int]:
    conn = connect(port)
    versions: list[int] = []
    path = f"/api/v1/models/{model}/versions/?page_size=500"
    try:
        while path:
            status, page = request(conn, "GET", path, headers=headers)
            if status != 200:
                raise RuntimeError(f"GET {path}: HTTP {status}: {page}")
            versions += [item["version"] for item in page["results"]]
            path = None
            if page["next"]:
                parts = urllib.parse.urlsplit(page["next"])
                path = f"{parts.path}?{parts.query}"
    finally:
        conn.close()
    return sorted(versions)


def gap_report(versions: list[int], count: int) -> str:
    if versions == list(range(1, count + 1)):
        return f"1..{count}, no gap"
    missing = sorted(set(range(1, count + 1)) - set(versions))
    extra = len(versions) - len(set(versions))
    return (
        f"WRONG: {len(versions)} listed, {len(missing)} missing "
        f"(first {missing[:5]}), {extra} duplicated, max {max(versions, default=0)}"
    )


def imported_from(root: Path, env: dict[str, str]) -> None:
    """Stop unless each of the project's packages in the checkout at `root` is found
    there by an interpreter started as its servers and commands are.

    The project's environment installs this repository in editable mode, through an
    import hook that Python consults only after sys.path: a checkout at the front of
    the path (PYTHONPATH, the working directory, gunicorn's --chdir) shadows it. A
    package the hook still supplied would mean measuring this checkout's code under
    the other's name."""
    names = [name for name in PACKAGES if (root / name / "__init__.py").exists()]
    probe = (
        "import importlib.util, sys\n"
        "for name in sys.argv[1:]: print(importlib.util.find_spec(name).origin)"
    )
    found = subprocess.run(
        [str(PYTHON), "-c", probe, *names],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0 or not names:
        raise RuntimeError(f"{root}: the project's packages not found: {found.stderr}")
    strays = [
        origin for origin in found.stdout.split() if not Path(origin).resolve().is_relative_to(root)
    ]
    if strays:
        raise RuntimeError(f"{root}: packages imported from elsewhere: {', '.join(strays)}")


class Modelgov:
    """modelgov under gunicorn, from this checkout or another one at `root`, on a fresh
    database, with a ci token."""

    created = 201

    def __init__(self, args, *, name: str, root: Path, gunicorn: list[str], database: str):
        self.args = args
        self.name = name
        self.root = root
        self.gunicorn = gunicorn
        self.database = database
        self.revision = source_revision(root)
        self.env = {
            **os.environ,
            **production_keys(),
            "DATABASE_URL": database_url(args.postgres, database),
            "DEBUG": "false",
            "PYTHONPATH": str(root),
        }
        self.counter: StatementCounter | None = None
        self.server: Server | None = None
        self.checks: list[tuple[str, str]] = []
        self.report: dict = {}

    def start(self) -> None:
        args = self.args
        imported_from(self.root, self.env)
        recreate_database(args.postgres, self.database)
        manage_ok(self.env, "migrate", "--no-input", root=self.root)
        manage_ok(self.env, "setup_roles", root=self.root)
        add_user = manage_ok(
            self.env, "add_user", "bench-ci", "--role", "ci", "--token", root=self.root
        )
        self.token = add_user.splitlines()[-1]
        self.headers = {"Authorization": f"Bearer {self.token}"}
        if "pg_stat_statements" in preloaded_libraries(args.postgres):
            self.counter = StatementCounter(args.postgres, self.database)
            self.counter.install()
        else:
            self.report["statements"] = (
                "n/a (pg_stat_statements is not in shared_preload_libraries)"
            )
        port = free_port()
        self.server = Server(
            self.name,
            [
                str(GUNICORN),
                "config.wsgi",
                "-b",
                f"127.0.0.1:{port}",
                "--chdir",
                str(self.root),
                *self.gunicorn,
            ],
            self.env,
            port,
            self.database,
            cwd=self.root,
        )
        self.server.start()
        self.server.wait_ready("/healthz", timeout=60)

    def describe(self) -> str:
        where = "" if self.root == ROOT else f" at {self.root}"
        options = " ".join(["gunicorn config.wsgi", *map(shlex.quote, self.gunicorn)])
        return f"modelgov {self.revision}{where}: {options}"

    def model(self, level: int | None) -> str:
        return "bench-warmup" if level is None else f"bench-model-c{level}"

    def create_model(self, level: int | None) -> None:
        body = {"name": self.model(level)}
        post_ok(self.server.port, "/api/v1/models/", body, self.headers, 201)
        if self.counter and level == self.args.levels[0]:
            self.counter.reset()

    def make_request(self, level: int | None):
        model, headers = self.model(level), self.headers

        def make(index: int):
            body = {
                "artifact_uri": f"s3://bucket/model-{index}.pkl",
                "artifact_sha256": sha256_of(f"{model}/{index}"),
                "artifact_size": 1234,
                "framework": "sklearn",
                "metrics": {"auc": 0.91, "f1": 0.8},
                "params": {"max_depth": 6},
            }
            return "POST", f"/api/v1/models/{model}/versions/", body, headers

        return make

    def level_done(self, level: int) -> None:
        if self.counter and level == self.args.levels[0]:
            per_version = self.counter.total() / self.args.versions
            self.report["statements"] = f"{per_version:.1f} (concurrency {level} batch)"
        model = self.model(level)
        versions = listed_versions(self.server.port, self.headers, model)
        self.checks.append((model, gap_report(versions, self.args.versions)))

    def stop(self) -> None:
        if self.server is None:
            return
        self.server.stop()
        report = self.report
        queries = manage(
            {**self.env, "BENCH_TOKEN": self.token},
            "shell",
            "--no-imports",
            "-c",
            QUERY_COUNT_SNIPPET,
            root=self.root,
        )
        if queries.returncode == 0:
            total, control = queries.stdout.split()[-2:]
            report["queries"] = f"{total} ({int(total) - int(control)} + {control} BEGIN/COMMIT)"
        else:
            report["queries_failed"] = f"failed: {queries.stderr.strip()[-500:]}"
        audit = manage(self.env, "verify_audit", root=self.root)
        report["audit_ok"] = audit.returncode == 0
        report["audit"] = (audit.stdout + audit.stderr).strip()

    def results(self) -> list[tuple[str, bool | None]]:
        """What the run found, line by line, each with whether it is a check that
        passed (True), one that failed (False), or a figure (None)."""
        report = self.report
        queries = report.get("queries") or report.get("queries_failed", "not counted")
        lines = [
            (f"SQL queries per registration (Django, one request): {queries}", "queries" in report),
            (
                f"SQL statements per registration (pg_stat_statements): {report.get('statements')}",
                None,
            ),
        ]
        lines += [
            (f"Versions of {model}: {verdict}", verdict.startswith("1.."))
            for model, verdict in self.checks
        ]
        verified = report.get("audit_ok", False)
        lines.append((f"Audit chain: {'verified' if verified else 'NOT verified'}", verified))
        lines += [(f"  {line}", None) for line in report.get("audit", "").splitlines()]
        return lines


def ensure_mlflow() -> Path:
    mlflow = MLFLOW_VENV / "bin" / "mlflow"
    pip = MLFLOW_VENV / "bin" / "pip"
    if mlflow.exists():
        shown = subprocess.run(
            [str(pip), "show", "mlflow"], capture_output=True, text=True, check=False
        ).stdout
        if f"Version: {MLFLOW_VERSION}" in shown:
            return mlflow
    print(f"Installing {', '.join(MLFLOW_PACKAGES)} into {MLFLOW_VENV} ...", flush=True)
    if not pip.exists():
        subprocess.run(["python3", "-m", "venv", str(MLFLOW_VENV)], check=True)
    subprocess.run(
        [str(pip), "install", "--quiet", "--disable-pip-version-check", *MLFLOW_PACKAGES],
        check=True,
    )
    return mlflow


class Mlflow:
    """`mlflow server` (uvicorn) from its own virtual environment, on a fresh database."""

    name = "MLflow"
    created = 200

    def __init__(self, args):
        self.args = args
        self.server: Server | None = None

    def start(self) -> None:
        mlflow = ensure_mlflow()
        recreate_database(self.args.postgres, MLFLOW_DB)
        artifacts = BENCH_DIR / "mlflow-artifacts"
        artifacts.mkdir(parents=True, exist_ok=True)
        backend_uri = sqlalchemy_url(database_url(self.args.postgres, MLFLOW_DB))
        port = free_port()
        options = ["--workers", str(self.args.mlflow_workers)]
        self.server = Server(
            "mlflow",
            [
                str(mlflow),
                "server",
                "--backend-store-uri",
                backend_uri,
                "--default-artifact-root",
                artifacts.as_uri(),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *options,
            ],
            {**os.environ},
            port,
            MLFLOW_DB,
        )
        self.server.start()
        self.server.wait_ready("/health", timeout=180)

    def describe(self) -> str:
        return (
            f"MLflow {MLFLOW_VERSION}: mlflow server (uvicorn) --workers {self.args.mlflow_workers}"
        )

    def model(self, level: int | None) -> str:
        return "bench-warmup" if level is None else f"bench-c{level}"

    def create_model(self, level: int | None) -> None:
        body = {"name": self.model(level)}
        post_ok(self.server.port, "/api/2.0/mlflow/registered-models/create", body, {}, 200)

    def make_request(self, level: int | None):
        model = self.model(level)

        def make(index: int):
            body = {"name": model, "source": f"s3://bucket/model-{index}"}
            return "POST", "/api/2.0/mlflow/model-versions/create", body, {}

        return make

    def level_done(self, level: int) -> None:
        pass

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def results(self) -> list[tuple[str, bool | None]]:
        return []


def settle(servers: list[Server], timeout: float = 120, idle: float = 0.05) -> None:
    """Wait until the servers' processes together use less than `idle` of a core."""
    deadline = time.monotonic() + timeout

    def used() -> dict[int, float]:
        return {
            pid: cpu
            for server in servers
            for pid, (role, cpu) in server.cpu_seconds().items()
            if role == "server"
        }

    before = used()
    while time.monotonic() < deadline:
        time.sleep(1)
        after = used()
        busy = sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())
        if busy < idle:
            return
        before = after


def sqlalchemy_url(url: str) -> str:
    """A libpq URL as SQLAlchemy takes it for MLflow: psycopg2 named (SQLAlchemy 2.1
    maps postgresql:// to psycopg 3, the venv has psycopg2), and a socket folder,
    which libpq reads percent-encoded in the host, as the `host` query parameter."""
    parts = urllib.parse.urlsplit(url)
    userinfo, _, host = parts.netloc.rpartition("@")
    netloc, query = parts.netloc, parts.query
    if host.lower().startswith("%2f"):
        netloc = f"{userinfo}@" if userinfo else ""
        query = "&".join(filter(None, [query, f"host={urllib.parse.unquote(host)}"]))
    return urllib.parse.urlunsplit(("postgresql+psycopg2", netloc, parts.path, query, ""))


def rounds_of(total: int, rounds: int) -> list[int]:
    """`total` split into `rounds` near-equal parts."""
    rounds = max(1, min(rounds, total))
    return [total // rounds + (1 if i < total % rounds else 0) for i in range(rounds)]


def bench(systems: list, args) -> dict[str, list[Batch]]:
    """Each system's batches, one per concurrency level. Every server runs for the whole
    benchmark, and each level is measured in rounds that alternate between the
    systems (the first to go changes every round), so that a machine whose speed
    drifts, as shared machines do, slows each system alike."""
    batches: dict[str, list[Batch]] = {system.name: [] for system in systems}
    try:
        for system in systems:
            system.start()
        # MLflow's server starts a dozen processes (uvicorn workers, huey consumers)
        # that keep importing for some seconds after it answers: wait until every
        # server is idle, so that one's start-up is not measured as the other's load.
        settle([system.server for system in systems])
        for system in systems:
            system.create_model(None)
            warm_up = Batch(system.name, max(args.levels), 0)
            run_batch(
                warm_up, system.server, WARMUP_VERSIONS, system.make_request(None), system.created
            )
        for level in args.levels:
            measured = {}
            for system in systems:
                system.create_model(level)
                measured[system.name] = Batch(system.name, level, 0)
            first = 0
            for number, size in enumerate(rounds_of(args.versions, args.rounds)):
                for system in systems if number % 2 == 0 else systems[::-1]:
                    others = [other.server for other in systems if other is not system]
                    for server in others:
                        server.pause()
                    try:
                        run_batch(
                            measured[system.name],
                            system.server,
                            size,
                            system.make_request(level),
                            system.created,
                            first=first,
                        )
                    finally:
                        for server in others:
                            server.resume()
                first += size
            for system in systems:
                system.level_done(level)
                batches[system.name].append(measured[system.name])
    finally:
        for system in systems:
            system.stop()
    return batches


def cpu_per_registration(batch: Batch) -> float:
    return batch.own_cpu / batch.count


def print_report(args, systems: list, batches: dict[str, list[Batch]], report: dict) -> bool:
    first = systems[0]
    every_batch = [batch for system in systems for batch in batches[system.name]]
    width = max(len(system.name) for system in systems)
    print()
    print(f"Registering {args.versions} versions per concurrency level (one model each)")
    print(f"Load average before the run: {report['load']}")
    print()
    header = (
        f"{'clients':>7}  {'system':<{width}}  {'v/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'CPU ms':>7}"
    )
    if len(systems) > 1:
        header += f"  {'ratio':>6} {'CPU ratio':>9}"
    print(header)
    print("-" * len(header))
    for index, level in enumerate(args.levels):
        ours = batches[first.name][index]
        for system in systems:
            batch = batches[system.name][index]
            line = (
                f"{level:>7}  {system.name:<{width}}  {batch.rate:>7.1f}"
                f" {batch.percentile(50) * 1000:>7.1f} {batch.percentile(95) * 1000:>7.1f}"
                f" {cpu_per_registration(batch) * 1000:>7.2f}"
            )
            if system is not first:
                line += (
                    f"  {ours.rate / batch.rate:>5.2f}x"
                    f" {cpu_per_registration(ours) / cpu_per_registration(batch):>8.2f}x"
                )
            print(line)
    if len(systems) > 1:
        print(
            f"ratio: {first.name}'s versions/s over that system's; CPU ratio: {first.name}'s"
            " CPU per registration over that system's (below 1, it spends less)"
        )
    print()
    cores = os.cpu_count()
    # Versions/s is the cores a system keeps busy divided by the CPU a registration
    # costs it: the two columns say which of the two a ratio comes from.
    print(
        f"CPU per registration, the cores it kept busy, and what other processes used"
        f" meanwhile ({cores} cores):"
    )
    for batch in every_batch:
        split = ", ".join(
            f"{role} {batch.cpu_split.get(role, 0.0) / batch.count * 1000:.2f}"
            for role in ("client", "server", "database")
        )
        print(
            f"  {batch.system:<{width}} {batch.concurrency:>2} clients: "
            f"{cpu_per_registration(batch) * 1000:5.2f} ms ({split}); "
            f"busy {batch.own_cpu / batch.seconds:.2f} cores; "
            f"others {batch.other_cores:.2f} cores"
        )
    busiest = max(every_batch, key=lambda batch: batch.other_cores)
    if busiest.other_cores > BUSY_NEIGHBOUR:
        # A system that keeps more cores busy loses more to a neighbour: the ratio
        # then says less about the systems than about the machine.
        print(
            f"  Other processes kept {busiest.other_cores:.2f} cores busy"
            f" while {busiest.system} ran at concurrency {busiest.concurrency}: these are"
            " not the figures of an idle machine."
        )
    print()
    print(f"PostgreSQL:       {args.postgres}")
    print(f"Rounds per level: {args.rounds}, alternating between the systems")
    print(f"HTTP parser:      {http_parser()}")
    ok = True
    for system in systems:
        print(f"{system.name}: {system.describe()}")
        for line, passed in system.results():
            print(f"  {line}")
            ok = ok and passed is not False
        for batch in batches[system.name]:
            if batch.failures:
                ok = False
                print(
                    f"  at concurrency {batch.concurrency}: {len(batch.failures)} failed"
                    f" requests, first: {batch.failures[0]}"
                )
    print()
    print("All checks passed." if ok else "SOME CHECKS FAILED.")
    return ok


def default_postgres() -> str:
    """Both services reach the PostgreSQL on this machine the way co-located services
    do, through its Unix socket, when it has one (each round trip then skips the TCP
    stack); TCP on 127.0.0.1 otherwise."""
    for folder in ("/var/run/postgresql",):
        if os.path.exists(f"{folder}/.s.PGSQL.5432"):
            return f"postgresql://postgres@{urllib.parse.quote(folder, safe='')}"
    return "postgresql://postgres@127.0.0.1:5432"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=2000, help="versions per level")
    parser.add_argument(
        "--concurrency", default="1,8", help="comma-separated client counts (default 1,8)"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    parser.add_argument(
        "--worker-class",
        choices=(THREAD_WORKER, "gthread", "sync"),
        default=THREAD_WORKER,
        help=f"gunicorn worker class (default {THREAD_WORKER}, as deploy/gunicorn.conf.py)",
    )
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per gunicorn worker (not sync)"
    )
    parser.add_argument(
        "--keep-alive", type=int, default=5, help="gunicorn keep-alive seconds (not sync)"
    )
    parser.add_argument(
        "--candidate-gunicorn",
        metavar="ARGS",
        help="the measured modelgov's gunicorn options, in place of those the four above"
        ' make (write --candidate-gunicorn="--workers 2 ...")',
    )
    parser.add_argument(
        "--candidate",
        metavar="DIR",
        type=checkout,
        default=ROOT,
        help="serve the measured modelgov from the checkout in DIR (default: this one)",
    )
    parser.add_argument(
        "--baseline",
        metavar="DIR",
        type=checkout,
        help="measure against a modelgov served from the checkout in DIR (a git worktree"
        " of another commit) instead of MLflow",
    )
    parser.add_argument(
        "--baseline-gunicorn",
        metavar="ARGS",
        help="measure against a modelgov served with these gunicorn options (default: the"
        " candidate's) instead of MLflow; from --baseline DIR if given, else the"
        " candidate's checkout",
    )
    parser.add_argument(
        "--with-mlflow",
        action="store_true",
        help="side by side, measure MLflow too, as a third system",
    )
    parser.add_argument("--mlflow-workers", type=int, default=4, help="mlflow server --workers")
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="rounds each level is measured in, alternating between the systems",
    )
    parser.add_argument(
        "--skip-mlflow", action="store_true", help="measure modelgov only (no baseline)"
    )
    parser.add_argument(
        "--postgres",
        default=default_postgres(),
        help="PostgreSQL server URL without a database name (default: the local server's"
        " Unix socket when it has one, else 127.0.0.1:5432)",
    )
    args = parser.parse_args()
    args.mlflow_env = dict(
        item.split("=", 1) for item in os.environ.get("BENCH_MLFLOW_ENV", "").split() if "=" in item
    )
    args.levels = [int(level) for level in args.concurrency.split(",") if level.strip()]
    if args.versions < 1 or not args.levels or min(args.levels) < 1:
        parser.error("--versions and every --concurrency level must be at least 1")
    options = ["--workers", str(args.workers), "--worker-class", args.worker_class]
    if args.worker_class != "sync":
        options += ["--threads", str(args.threads), "--keep-alive", str(args.keep_alive)]
    args.side_by_side = args.baseline is not None or args.baseline_gunicorn is not None
    args.candidate_gunicorn = (
        options if args.candidate_gunicorn is None else shlex.split(args.candidate_gunicorn)
    )
    args.baseline_gunicorn = (
        args.candidate_gunicorn
        if args.baseline_gunicorn is None
        else shlex.split(args.baseline_gunicorn)
    )
    args.baseline = args.baseline or args.candidate
    if args.side_by_side and args.skip_mlflow:
        parser.error("--skip-mlflow measures one system: leave out the baseline")
    if args.with_mlflow and not args.side_by_side:
        parser.error("--with-mlflow adds MLflow to a baseline: name one")
    return args


def checkout(path: str) -> Path:
    """A directory holding a checkout of this repository, as an absolute path."""
    root = Path(path).resolve()
    if not (root / "manage.py").is_file() or not (root / "config" / "wsgi.py").is_file():
        raise argparse.ArgumentTypeError(f"{root} holds no checkout of modelgov")
    return root


def systems_of(args) -> list:
    """The systems to measure, the candidate first: the others are compared with it."""
    candidate = Modelgov(
        args,
        name="candidate" if args.side_by_side else "modelgov",
        root=args.candidate,
        gunicorn=args.candidate_gunicorn,
        database=MODELGOV_DB,
    )
    if not args.side_by_side:
        return [candidate] + ([] if args.skip_mlflow else [Mlflow(args)])
    baseline = Modelgov(
        args,
        name="baseline",
        root=args.baseline,
        gunicorn=args.baseline_gunicorn,
        database=BASELINE_DB,
    )
    return [candidate, baseline] + ([Mlflow(args)] if args.with_mlflow else [])


def main() -> int:
    args = parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    started = time.perf_counter()
    report = {"load": " ".join(f"{value:.2f}" for value in os.getloadavg())}
    systems = systems_of(args)
    for system in systems:
        print(f"{system.name}: {system.describe()}")
    names = " and ".join(system.name for system in systems)
    print(
        f"{names}: {args.versions} versions at concurrency {args.concurrency},"
        f" in {args.rounds} alternating rounds ...",
        flush=True,
    )
    batches = bench(systems, args)
    ok = print_report(args, systems, batches, report)
    print(f"Total time: {time.perf_counter() - started:.0f}s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
