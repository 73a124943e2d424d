"""One registration driven over HTTP through its gates to `awaiting_approval`, against
a running service: python3 .ci/smoke.py BASE_URL CI_TOKEN. Standard library only, so
it runs beside an install that has nothing but the service's own dependencies."""

import json
import sys
import time
import urllib.error
import urllib.request
import uuid

BOUNDARY = "modelgov-smoke"


def call(base: str, token: str, method: str, path: str, body=None, *, content_type=None):
    data = body
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if isinstance(body, dict):
        data = json.dumps(body).encode()
        content_type = "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    request = urllib.request.Request(  # noqa: S310 - the service on loopback
        base + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        raise SystemExit(f"{method} {path}: {exc.code} {exc.read().decode()}") from exc


def evaluation_csv() -> bytes:
    """2,000 rows, two groups treated alike, 90% accurate: every default gate passes."""
    lines = ["y_true,y_pred,score,group"]
    for i in range(2000):
        truth = (i // 2) % 2
        predicted = 1 - truth if i % 20 in (0, 1) else truth
        lines.append(f"{truth},{predicted},{0.8 if predicted else 0.2},{'ab'[i % 2]}")
    return ("\n".join(lines) + "\n").encode()


def multipart(fields: dict[str, str], file: bytes) -> bytes:
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="eval.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    )
    return "".join(parts).encode() + head.encode() + file + f"\r\n--{BOUNDARY}--\r\n".encode()


def main(base: str, token: str) -> None:
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    call(base, token, "POST", "/api/v1/models/", {"name": name, "risk_tier": "medium"})
    status, version = call(
        base,
        token,
        "POST",
        f"/api/v1/models/{name}/versions/",
        {"artifact_uri": f"s3://models/{name}/1", "artifact_sha256": uuid.uuid4().hex * 2},
    )
    assert (status, version["version"]) == (201, 1), version
    fields = {"score_column": "score", "sensitive_features": "group"}
    call(
        base,
        token,
        "POST",
        f"/api/v1/models/{name}/versions/1/evaluation/",
        multipart(fields, evaluation_csv()),
        content_type=f"multipart/form-data; boundary={BOUNDARY}",
    )
    _, request = call(
        base,
        token,
        "POST",
        "/api/v1/promotions/",
        {"model": name, "version": 1, "target_stage": "production", "justification": "smoke"},
    )
    deadline = time.monotonic() + 120
    while request["status"] == "checking" and time.monotonic() < deadline:
        time.sleep(0.5)
        _, request = call(base, token, "GET", f"/api/v1/promotions/{request['id']}/")
    checks = {check["name"]: check["status"] for check in request["checks"]}
    print(f"promotion request #{request['id']}: {request['status']}, checks {checks}")
    if request["status"] != "awaiting_approval":
        raise SystemExit(f"expected awaiting_approval: {json.dumps(request, indent=2)}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
