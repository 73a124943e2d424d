"""Artifact integrity: the digest is well formed and, for a local artifact under one
of the configured ARTIFACT_ROOTS, the file's SHA-256 and size match what CI sent.

The verdict says what the check knows:

- `passed`: the file was read, and its digest and size match;
- `failed`: the digest is malformed, the content or the size differs, or a file://
  path lies outside the roots (refused without being opened: the check never becomes
  a way to read arbitrary files from the server);
- `unverified`: the server cannot read the artifact, so only the digest's form was
  checked: another scheme (s3://, gs://, https://, ...), or under a root a symbolic
  link, a directory, a FIFO, a device, a socket, or a file larger than
  INTEGRITY_MAX_BYTES. It blocks the request only where the policy sets
  `require_verified`;
- `error`: a file that should be readable is not (missing, permission denied).
"""

import errno
import hashlib
import os
import re
import stat
from typing import Any
from urllib.parse import unquote, urlparse

from django.conf import settings as django_settings

from governance.checks import ERROR, FAILED, PASSED, UNVERIFIED, CheckResult

SHA256 = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024
SETTINGS = {"require_verified"}

# A link is never followed: it could lead out of the roots. O_NONBLOCK: opening a FIFO
# must not wait for a writer that never comes.
DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def validate_settings(settings: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key, value in settings.items():
        if key not in SETTINGS:
            errors[key] = [f"Unknown setting. Known: {', '.join(sorted(SETTINGS))}."]
        elif not isinstance(value, bool):
            errors[key] = ["Expected true or false."]
    return errors


class Unreadable(Exception):
    """The artifact exists where it may be read, but is not a file the check reads."""


KINDS = {
    stat.S_IFDIR: "a directory; the check digests single files only",
    stat.S_IFLNK: "a symbolic link, which the check does not follow",
    stat.S_IFIFO: "a FIFO (named pipe), not a regular file",
    stat.S_IFCHR: "a character device, not a regular file",
    stat.S_IFBLK: "a block device, not a regular file",
    stat.S_IFSOCK: "a socket, not a regular file",
}


def _kind(mode: int) -> str | None:
    """What a non-regular file is, in words; None for a regular file."""
    if stat.S_ISREG(mode):
        return None
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def _roots() -> list[str]:
    """Each root as written and as resolved, the longest first, so a path under two
    nested roots is walked from the nearer one. A root is configuration: a link in it
    is the administrator's choice and is followed."""
    roots: set[str] = set()
    for root in getattr(django_settings, "ARTIFACT_ROOTS", []):
        roots |= {os.path.abspath(root), os.path.realpath(root)}
    return sorted(roots, key=len, reverse=True)


def _below_a_root(path: str) -> tuple[str, list[str]] | None:
    """The root `path` lies under and the names below it, read from the path's text
    alone ("." and ".." already folded): nothing on disk is consulted, so no link
    decides where the path leads."""
    for root in _roots():
        if path == root:
            return root, []
        prefix = root if root.endswith(os.sep) else root + os.sep
        if path.startswith(prefix):
            return root, path[len(prefix) :].split(os.sep)
    return None


def _open_below(root: str, names: list[str]) -> int:
    """A descriptor of the regular file at root/names, opened one name at a time from
    the root's descriptor, so no link anywhere below the root is followed."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for depth, name in enumerate(names):
            shown = os.path.join(root, *names[: depth + 1])
            # Looked at before opening, so a device is never opened (opening one can act
            # on it); the descriptor is looked at again below, for a swap in between.
            mode = os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode
            last = depth == len(names) - 1
            if stat.S_ISLNK(mode) or (last and not stat.S_ISREG(mode)):
                raise Unreadable(f"{shown} is {_kind(mode)}.")
            try:
                child = os.open(name, FILE_FLAGS if last else DIRECTORY_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise Unreadable(f"{shown} is {_kind(stat.S_IFLNK)}.") from exc
                raise
            os.close(fd)
            fd = child
        kind = _kind(os.fstat(fd).st_mode)
        if kind:
            raise Unreadable(f"{os.path.join(root, *names)} is {kind}.")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _digest(fd: int, limit: int) -> tuple[str, int] | None:
    """SHA-256 and size of what the descriptor holds; None past `limit` bytes (a file
    that grew after it was measured)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := os.read(fd, CHUNK):
        size += len(chunk)
        if size > limit:
            return None
        digest.update(chunk)
    return digest.hexdigest(), size


def _unverified(why: str, results: dict[str, Any]) -> CheckResult:
    results["verified_content"] = False
    return CheckResult(
        UNVERIFIED, f"Not verified: {why} Only the digest's form was checked.", results
    )


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
        where = f"{uri.scheme}:// artifacts" if uri.scheme else "an artifact URI with no scheme"
        return _unverified(
            f"the server does not read {where}; it digests file:// artifacts under ARTIFACT_ROOTS.",
            results,
        )
    raw = unquote(uri.path)
    # abspath folds "." and ".." in the text; a NUL byte is no path at all.
    found = None if "\x00" in raw else _below_a_root(os.path.abspath(raw))
    if found is None:
        results["verified_content"] = False
        return CheckResult(
            FAILED, "The artifact path is outside the configured ARTIFACT_ROOTS; not read.", results
        )
    limit = django_settings.INTEGRITY_MAX_BYTES
    try:
        fd = _open_below(*found)
    except Unreadable as exc:
        return _unverified(str(exc), results)
    except OSError as exc:
        return CheckResult(ERROR, f"The artifact cannot be read: {exc.strerror}.", results)
    try:
        size = os.fstat(fd).st_size
        registered = version.artifact_size
        if size > limit:
            results["actual_size"] = size
            if registered is not None and size != registered:
                results["verified_content"] = False
                return CheckResult(
                    FAILED,
                    f"Artifact mismatch: the size is {size} bytes, not {registered}.",
                    results,
                )
            return _unverified(
                f"the artifact is {size} bytes, more than INTEGRITY_MAX_BYTES ({limit}); not read.",
                results,
            )
        read = _digest(fd, limit)
    except OSError as exc:
        return CheckResult(ERROR, f"The artifact cannot be read: {exc.strerror}.", results)
    finally:
        os.close(fd)
    if read is None:
        return _unverified(
            f"the artifact grew past INTEGRITY_MAX_BYTES ({limit}) while it was read.", results
        )
    actual, size = read
    results.update({"actual_sha256": actual, "actual_size": size, "verified_content": True})
    findings = []
    if actual != expected:
        findings.append("the SHA-256 differs from the registered one")
    if registered is not None and size != registered:
        findings.append(f"the size is {size} bytes, not {registered}")
    if findings:
        return CheckResult(FAILED, "Artifact mismatch: " + "; ".join(findings) + ".", results)
    return CheckResult(
        PASSED, f"Artifact verified: SHA-256 and size ({size} bytes) match.", results
    )
