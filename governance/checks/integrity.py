"""Artifact integrity: the digest is well formed and, for a local artifact under one
of the configured ARTIFACT_ROOTS, the file's SHA-256 and size match what CI sent.

A file:// artifact outside those roots is refused without being opened: the check
never becomes a way to read arbitrary files from the server."""

import hashlib
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from django.conf import settings as django_settings

from governance.checks import ERROR, FAILED, PASSED, CheckResult

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


def validate_settings(settings: dict[str, Any]) -> dict[str, list[str]]:
    return {key: ["Unknown setting."] for key in settings}


def _under_a_root(path: Path) -> bool:
    for root in getattr(django_settings, "ARTIFACT_ROOTS", []):
        root_path = Path(root).resolve()
        if path == root_path or root_path in path.parents:
            return True
    return False


def run(*, version, evaluation=None, settings: dict[str, Any]) -> CheckResult:
    expected = version.artifact_sha256
    results: dict[str, Any] = {
        "artifact_uri": version.artifact_uri,
        "expected_sha256": expected,
        "expected_size": version.artifact_size,
    }
    if not SHA256.match(expected or ""):
        return CheckResult(FAILED, "The artifact digest is not a SHA-256 hex digest.", results)
    uri = urlparse(version.artifact_uri)
    if uri.scheme != "file":
        results["verified_content"] = False
        return CheckResult(
            PASSED,
            f"Digest well formed; {uri.scheme or 'this'} artifacts are not read by the server.",
            results,
        )
    # resolve() follows symlinks and "..", so the root test sees the real location.
    path = Path(unquote(uri.path)).resolve()
    if not _under_a_root(path):
        results["verified_content"] = False
        return CheckResult(
            FAILED, "The artifact path is outside the configured ARTIFACT_ROOTS; not read.", results
        )
    try:
        digest = hashlib.sha256()
        size = 0
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except OSError as exc:
        return CheckResult(ERROR, f"The artifact cannot be read: {exc.strerror}.", results)
    results.update(
        {"actual_sha256": digest.hexdigest(), "actual_size": size, "verified_content": True}
    )
    findings = []
    if digest.hexdigest() != expected:
        findings.append("the SHA-256 differs from the registered one")
    if version.artifact_size is not None and size != version.artifact_size:
        findings.append(f"the size is {size} bytes, not {version.artifact_size}")
    if findings:
        return CheckResult(FAILED, "Artifact mismatch: " + "; ".join(findings) + ".", results)
    return CheckResult(
        PASSED, f"Artifact verified: SHA-256 and size ({size} bytes) match.", results
    )
