"""The audit log at scale: exports and verification of a million chained events.

In a fresh PostgreSQL database (modelgov_audit_bench, dropped and re-created at the
start of a run and left in place afterwards) the script:

1. migrates, creates the roles and a compliance user with an API token;
2. appends N chained events (default 1,000,000) through the documented bulk path,
   audits.bulk.append_events (one head lock, the same hashes as record(), COPY),
   then takes a signed checkpoint of the head;
3. for the JSON Lines and the CSV export in turn, starts gunicorn (config.wsgi, one
   sync worker, DEBUG=false), warms it up with one small request, downloads the
   export over HTTP and reports the seconds, the rows per second and the worker's
   peak resident memory (VmHWM from /proc: a fresh worker per export, so each peak
   is that export's), then checks the download against its signed manifest;
4. times PostgreSQL's own `COPY (SELECT <the same columns> ... ORDER BY seq) TO STDOUT`
   of the same rows (seq up to the chain head the exports began at), read through
   psycopg, after the exports, so both read from an equally warm cache;
5. times `manage.py verify_audit` (the whole stored chain and its checkpoint) and
   `manage.py verify_audit --file EXPORT.jsonl --manifest M.json` on the export.

Targets: each export at no less than a third of COPY's rows per second with the worker
under 200 MB, and verify_audit of the database under 60 seconds.

Run from the repository root:

    .venv/bin/python bench/audit_scale.py
    .venv/bin/python bench/audit_scale.py --events 200000

Exit status 0 when every target is met and every check passed, 1 otherwise.
"""

import argparse
import hashlib
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
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
DATABASE = "modelgov_audit_bench"
# The baseline: PostgreSQL writing the same rows, every column, as fast as it can.
COPY_STATEMENT = (
    "COPY (SELECT seq, occurred_at, actor, actor_kind, action, object_type, object_id, "
    "object_repr, model, data, request_id, ip, prev_hash, hash FROM audits_auditevent "
    "WHERE seq <= %s ORDER BY seq) TO STDOUT"
)
RSS_LIMIT_MB = 200
VERIFY_LIMIT_S = 60
RATE_FRACTION = 1 / 3


def synthetic_events(count: int, seed: int = 20260301):
    """A plausible mix of what the log holds: registrations, promotions with their checks
    and approvals, stage moves and sign-ins, over 200 models and 60 people."""
    rng = random.Random(seed)
    at = datetime(2024, 1, 1, tzinfo=UTC)
    people = [f"user{n:02d}" for n in range(60)]
    for n in range(count):
        at += timedelta(microseconds=rng.randint(1_000, 20_000_000))
        model = f"model-{rng.randint(1, 200):03d}"
        version = rng.randint(1, 60)
        request = n // 6 + 1
        who = rng.choice(people)
        kind = n % 6
        base = {
            "occurred_at": at,
            "actor": who,
            "actor_kind": "user",
            "model": model,
            "request_id": f"{rng.getrandbits(128):032x}",
            "ip": f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        }
        if kind == 0:
            base["actor"], base["actor_kind"] = "ci-bot", "service"
            yield {
                **base,
                "action": "model_version.registered",
                "object_type": "model_version",
                "object_id": str(n),
                "object_repr": f"{model} v{version}",
                "data": {
                    "version": version,
                    "artifact_uri": f"s3://models/{model}/{version}.pkl",
                    "artifact_sha256": f"{rng.getrandbits(256):064x}",
                    "artifact_size": rng.randint(10_000, 900_000_000),
                    "framework": "sklearn",
                    "metrics": {"auc": rng.random(), "f1": rng.random()},
                    "lineage": {"code_commit": f"{rng.getrandbits(28):07x}", "run_id": str(n)},
                },
            }
        elif kind == 1:
            yield {
                **base,
                "action": "promotion.requested",
                "object_type": "promotion_request",
                "object_id": str(request),
                "object_repr": f"#{request} {model} v{version} → production",
                "data": {
                    "promotion_request": request,
                    "version": version,
                    "target_stage": "production",
                    "policy_digest": f"{rng.getrandbits(256):064x}",
                    "from_stage": "staging",
                    "justification": "Better recall at the same precision.",
                },
            }
        elif kind == 2:
            base["actor"], base["actor_kind"] = "system", "system"
            yield {
                **base,
                "action": "check.passed",
                "object_type": "check_run",
                "object_id": str(request),
                "object_repr": f"integrity on #{request} (passed)",
                "data": {
                    "check": "integrity",
                    "promotion_request": request,
                    "round": 1,
                    "summary": "Digest well formed.",
                    "results": {"expected_size": None, "verified_content": False},
                },
            }
        elif kind == 3:
            yield {
                **base,
                "action": "promotion.approved",
                "object_type": "promotion_request",
                "object_id": str(request),
                "object_repr": f"#{request} {model} v{version} → production",
                "data": {
                    "promotion_request": request,
                    "version": version,
                    "comment": "Metrics and card reviewed.",
                    "valid_approvals": 1,
                    "required_approvals": 1,
                },
            }
        elif kind == 4:
            yield {
                **base,
                "action": "model_version.stage_changed",
                "object_type": "model_version",
                "object_id": str(n),
                "object_repr": f"{model} v{version}",
                "data": {
                    "to": "production",
                    "from": "staging",
                    "reason": "Promoted.",
                    "version": version,
                    "promotion_request": request,
                },
            }
        else:
            yield {
                **base,
                "model": None,
                "action": "auth.login",
                "object_type": "user",
                "object_id": str(rng.randint(1, 60)),
                "object_repr": who,
                "data": {"username": who, "path": "/admin/login/"},
            }


def fill(url: str, count: int) -> tuple[float, tuple[int, str]]:
    """Append `count` events through audits.bulk.append_events, in this process."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from audits.bulk import append_events

    started = time.perf_counter()
    head = append_events(synthetic_events(count))
    seconds = time.perf_counter() - started
    connection.close()
    return seconds, head


def process_memory_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


class Gunicorn:
    """gunicorn with one sync worker, in its own process group."""

    def __init__(self, env: dict[str, str], log_name: str):
        self.env = env
        self.port = free_port()
        self.log_path = BENCH_DIR / f"{log_name}.log"
        self.process: subprocess.Popen | None = None

    def __enter__(self):
        argv = [
            str(GUNICORN),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{self.port}",
            "--workers",
            "1",
            # A million-row export takes a while; a sync worker is not heartbeating
            # while it streams, so the default 30 s would kill it mid-way.
            "--timeout",
            "900",
        ]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited early; see {self.log_path}")
            try:
                status, _, _ = self.get("/healthz", {})
                if status == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer /healthz in 60s")

    def __exit__(self, *exc):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def worker(self) -> int:
        workers = children(self.process.pid)
        if len(workers) != 1:
            raise RuntimeError(f"expected one gunicorn worker, found {workers}")
        return workers[0]

    def get(self, path: str, headers: dict[str, str]):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    def download(self, path: str, headers: dict[str, str], into: Path | None):
        """Stream a response to disk (or nowhere), hashing it; returns status, headers,
        sha256, byte count, line count and seconds to the last byte."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=900)
        digest, size, lines = hashlib.sha256(), 0, 0
        started = time.perf_counter()
        try:
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            sink = open(into, "wb") if into else None  # noqa: SIM115 - closed below
            try:
                while block := response.read(1 << 20):
                    digest.update(block)
                    size += len(block)
                    lines += block.count(b"\n")
                    if sink:
                        sink.write(block)
            finally:
                if sink:
                    sink.close()
            seconds = time.perf_counter() - started
            return (
                response.status,
                dict(response.getheaders()),
                digest.hexdigest(),
                size,
                lines,
                seconds,
            )
        finally:
            conn.close()


def export_over_http(env, token, fmt: str, into: Path | None) -> dict:
    headers = {"Authorization": f"Bearer {token}"}
    with Gunicorn(env, f"audit-export-{fmt}") as server:
        status, _, _ = server.get("/api/v1/audit/events/?page_size=1", headers)
        if status != 200:
            raise RuntimeError(f"warm-up request answered {status}")
        worker = server.worker()
        before_kb = process_memory_kb(worker, "VmHWM")
        status, got, sha256, size, lines, seconds = server.download(
            f"/api/v1/audit/export/?format={fmt}", headers, into
        )
        if status != 200:
            raise RuntimeError(f"export answered {status}")
        peak_kb = process_memory_kb(worker, "VmHWM")
        link = got["Link"].split(">")[0].lstrip("<")
        status, _, body = server.get(link, headers)
        manifest = json.loads(body) if status == 200 else {}
        _, _, public_key = server.get("/api/v1/audit/public-key/", {})
    rows = lines - (1 if fmt == "csv" else 0)
    return {
        "format": fmt,
        "seconds": seconds,
        "rows": rows,
        "bytes": size,
        "head_seq": int(got["X-Audit-Head-Seq"]),
        "warm_kb": before_kb,
        "peak_kb": peak_kb,
        "manifest": manifest,
        "manifest_ok": manifest.get("sha256") == sha256 and manifest.get("rows") == rows,
        "public_key": public_key,
    }


def copy_out(url: str, upto_seq: int) -> tuple[float, int, int]:
    size = rows = 0
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        started = time.perf_counter()
        with cursor.copy(COPY_STATEMENT, (upto_seq,)) as copy:
            for block in copy:
                size += len(block)
                rows += bytes(block).count(b"\n")
        seconds = time.perf_counter() - started
    return seconds, rows, size


def timed(env, *args) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    result = manage(env, *args)
    return time.perf_counter() - started, result


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="events to append")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL without a database name",
    )
    parser.add_argument(
        "--keep-export",
        action="store_true",
        help="keep the JSON Lines export and its manifest in .bench/ after the run",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    BENCH_DIR.mkdir(exist_ok=True)
    url = database_url(args.postgres, DATABASE)
    env = {
        **os.environ,
        "DATABASE_URL": url,
        **production_keys(),
        "DEBUG": "false",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
    }
    print(f"Audit log at scale: {args.events:,} events in PostgreSQL ({DATABASE})", flush=True)
    recreate_database(args.postgres, DATABASE)
    manage_ok(env, "migrate", "--no-input")
    manage_ok(env, "setup_roles")
    token = manage_ok(env, "add_user", "bench-compliance", "--role", "compliance", "--token")
    token = token.splitlines()[-1]

    fill_seconds, head = fill(url, args.events)
    print(
        f"  appended through audits.bulk.append_events in {fill_seconds:.1f} s; head seq {head[0]}",
        flush=True,
    )
    manage_ok(env, "audit_checkpoint")

    export_path = BENCH_DIR / "audit-export.jsonl"
    manifest_path = BENCH_DIR / "audit-export.manifest.json"
    key_path = BENCH_DIR / "audit-public-key.pem"
    print("  JSON Lines export over HTTP ...", flush=True)
    jsonl = export_over_http(env, token, "jsonl", export_path)
    manifest_path.write_text(json.dumps(jsonl["manifest"]))
    key_path.write_bytes(jsonl["public_key"])
    print("  CSV export over HTTP ...", flush=True)
    csv = export_over_http(env, token, "csv", None)
    print("  COPY ... TO STDOUT ...", flush=True)
    copy_seconds, copy_rows, copy_bytes = copy_out(url, jsonl["head_seq"])
    print("  verify_audit ...", flush=True)
    verify_seconds, verified = timed(env, "verify_audit")
    print("  verify_audit --file --manifest --public-key ...", flush=True)
    file_seconds, file_verified = timed(
        {**env, "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/no-database-needed"},
        "verify_audit",
        "--file",
        str(export_path),
        "--manifest",
        str(manifest_path),
        "--public-key",
        str(key_path),
    )
    if not args.keep_export:
        export_path.unlink(missing_ok=True)
        manifest_path.unlink(missing_ok=True)

    copy_rate = copy_rows / copy_seconds
    print()
    print(f"Events in the log: {jsonl['head_seq']:,} (head when the exports began)")
    print(f"Bulk append of {args.events:,} events: {fill_seconds:.1f} s")
    print()
    header = f"{'':34}{'seconds':>9}{'rows/s':>11}{'vs COPY':>9}{'MB sent':>9}{'peak RSS':>10}"
    print(header)
    print("-" * len(header))
    ok = True
    for result, label in ((jsonl, "JSON Lines export (HTTP)"), (csv, "CSV export (HTTP)")):
        rate = result["rows"] / result["seconds"]
        print(
            f"{label:34}{result['seconds']:>9.1f}{rate:>11,.0f}{rate / copy_rate:>9.2f}"
            f"{result['bytes'] / 1e6:>9.0f}{mb(result['peak_kb']):>10}"
        )
        ok = ok and rate >= RATE_FRACTION * copy_rate
        ok = ok and result["peak_kb"] < RSS_LIMIT_MB * 1024
        ok = ok and result["manifest_ok"] and result["rows"] == result["head_seq"]
    print(
        f"{'COPY (SELECT ...) TO STDOUT':34}{copy_seconds:>9.1f}{copy_rate:>11,.0f}"
        f"{1:>9.2f}{copy_bytes / 1e6:>9.0f}{'':>10}"
    )
    print()
    print(
        f"gunicorn worker RSS after a warm-up request: {mb(jsonl['warm_kb'])} (JSON Lines run), "
        f"{mb(csv['warm_kb'])} (CSV run)"
    )
    for result in (jsonl, csv):
        print(
            f"{result['format']} download matches its signed manifest "
            f"({result['rows']:,} rows, sha256 {result['manifest'].get('sha256', '?')[:16]}…): "
            f"{'yes' if result['manifest_ok'] else 'NO'}"
        )
    verify_line = (verified.stdout or verified.stderr).strip().splitlines()
    print(f"verify_audit (database): {verify_seconds:.1f} s, exit {verified.returncode}")
    for line in verify_line:
        print(f"  {line}")
    file_line = (file_verified.stdout or file_verified.stderr).strip().splitlines()
    print(
        f"verify_audit --file --manifest --public-key (no database): {file_seconds:.1f} s, "
        f"exit {file_verified.returncode}"
    )
    for line in file_line:
        print(f"  {line}")
    ok = ok and verified.returncode == 0 and file_verified.returncode == 0
    ok = ok and verify_seconds < VERIFY_LIMIT_S and copy_rows == jsonl["head_seq"]
    print()
    print(
        f"Targets: exports >= {RATE_FRACTION:.2f} of COPY's rows/s with peak RSS under "
        f"{RSS_LIMIT_MB} MB; verify_audit under {VERIFY_LIMIT_S} s."
    )
    print("All targets met and checks passed." if ok else "SOME TARGETS OR CHECKS FAILED.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
