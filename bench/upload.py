"""The web worker's memory while it checks a large evaluation upload.

Starts gunicorn (one sync worker) on a fresh SQLite database, uploads a CSV of about
`--megabytes` MB (ten columns, four of them named by the upload) over HTTP as a CI
token would, and prints the worker's resident memory before the upload, its peak
during it (the kernel's high-water mark, reset just before), and the growth as a
multiple of the file's size. The target is at most 1.5x for a 200 MB upload.

    .venv/bin/python bench/upload.py [--megabytes 199]
"""

import argparse
import base64
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import PYTHON, ROOT, free_port, manage_ok

BOUNDARY = "modelgov-bench-upload"
COLUMNS = ["y_true", "y_pred", "score", "group", *[f"feature_{i}" for i in range(6)]]


def write_csv(path: Path, megabytes: int) -> int:
    """Rows in chunks until the file reaches the size; returns the rows written."""
    rng = np.random.default_rng(7)
    target, rows = megabytes * 1024 * 1024, 0
    with path.open("w") as handle:
        handle.write(",".join(COLUMNS) + "\n")
        while handle.tell() < target:
            n = 50_000
            y_true = rng.integers(0, 2, n)
            y_pred = np.where(rng.random(n) < 0.9, y_true, 1 - y_true)
            score = np.round(np.clip(y_pred * 0.6 + rng.random(n) * 0.4, 0, 1), 4)
            group = rng.choice(["north", "south", "east", "west"], n)
            features = np.round(rng.normal(size=(n, 6)), 5)
            for i in range(n):
                extra = ",".join(map(str, features[i]))
                handle.write(f"{y_true[i]},{y_pred[i]},{score[i]},{group[i]},{extra}\n")
            rows += n
    return rows


def multipart_file(csv_path: Path, body_path: Path, fields: dict[str, str]) -> int:
    with body_path.open("wb") as body, csv_path.open("rb") as csv:
        for name, value in fields.items():
            body.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        body.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
            'filename="evaluation.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        )
        while chunk := csv.read(1024 * 1024):
            body.write(chunk)
        body.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    return body_path.stat().st_size


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def upload(port: int, token: str, body_path: Path, size: int, path: str) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    with body_path.open("rb") as body:
        conn.request(
            "POST",
            path,
            body=body,
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
                "Content-Length": str(size),
            },
        )
        response = conn.getresponse()
        answer = json.loads(response.read() or b"{}")
    conn.close()
    return response.status, answer


def worker_pid(master: int) -> int:
    for _ in range(100):
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=199)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelgov-upload-"))
    env = {
        **os.environ,
        "DEBUG": "false",
        "DATABASE_URL": f"sqlite:///{work / 'db.sqlite3'}",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "AUDIT_SIGNING_KEY": base64.b64encode(os.urandom(32)).decode(),
        "MEDIA_ROOT": str(work / "media"),
        "EVALUATION_MAX_BYTES": str((args.megabytes + 8) * 1024 * 1024),
    }
    csv_path, body_path = work / "evaluation.csv", work / "body"
    started = time.perf_counter()
    rows = write_csv(csv_path, args.megabytes)
    csv_size = csv_path.stat().st_size
    print(
        f"CSV: {csv_size / 1e6:.1f} MB, {rows:,} rows, {len(COLUMNS)} columns "
        f"(written in {time.perf_counter() - started:.1f} s)"
    )
    fields = {"score_column": "score", "sensitive_features": "group"}
    size = multipart_file(csv_path, body_path, fields)

    manage_ok(env, "migrate", "--noinput", "-v0")
    manage_ok(env, "setup_roles")
    token = manage_ok(env, "add_user", "bench-ci", "--role", "ci", "--token").splitlines()[-1]
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(PYTHON).parent / "gunicorn"),
            "config.wsgi",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--timeout",
            "600",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        worker = worker_pid(server.pid)
        api = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for _ in range(100):
            try:
                api.request("GET", "/healthz")
                api.getresponse().read()
                break
            except OSError:
                time.sleep(0.1)
                api = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        api.request("POST", "/api/v1/models/", json.dumps({"name": "bench"}), auth)
        api.getresponse().read()
        for seed in ("warm-up", "measured"):
            payload = {
                "artifact_uri": f"s3://bench/{seed}",
                "artifact_sha256": secrets.token_hex(32),
            }
            api.request("POST", "/api/v1/models/bench/versions/", json.dumps(payload), auth)
            api.getresponse().read()
        # A small upload first, so pandas and the upload path are loaded before measuring.
        small = work / "small.csv"
        small.write_bytes(b"".join(csv_path.open("rb").readlines()[:1000]))
        small_body = work / "small-body"
        small_size = multipart_file(small, small_body, fields)
        status, _ = upload(
            port, token, small_body, small_size, "/api/v1/models/bench/versions/1/evaluation/"
        )
        assert status == 201, status

        before = status_kb(worker, "VmRSS")
        Path(f"/proc/{worker}/clear_refs").write_text("5")  # resets the peak (VmHWM)
        started = time.perf_counter()
        status, answer = upload(
            port, token, body_path, size, "/api/v1/models/bench/versions/2/evaluation/"
        )
        seconds = time.perf_counter() - started
        peak = status_kb(worker, "VmHWM")
    finally:
        server.terminate()
        server.wait(timeout=30)
    if status != 201:
        raise SystemExit(f"upload answered {status}: {answer}")
    growth = (peak - before) * 1024
    print(f"upload: {status}, {answer['rows']:,} rows checked and stored in {seconds:.1f} s")
    print(
        f"worker RSS before: {before / 1024:.0f} MB; peak during: {peak / 1024:.0f} MB; "
        f"growth: {growth / 1e6:.0f} MB = {growth / csv_size:.2f}x the file (target <= 1.5x)"
    )


if __name__ == "__main__":
    main()
