"""What verify_audit checks: an exported file (with no database) or the stored log, each
with any signed manifest and checkpoints it is given.

A signature counts only when it was made by a key the verifier trusts (Trust): the
service's own key and any given with --public-key. A document's own key only shows it
unchanged since signing: whoever can write the database or hand over a file can sign
with a key of their own, so that is used only when asked for (Trust.embedded_keys)."""

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from audits.chain import VerifyResult, iter_jsonl, verify_each, verify_events
from audits.signing import (
    DEVELOPMENT_PREFIX,
    SigningKeyError,
    fingerprint,
    load_public_key,
    verify_document,
)

CHECKPOINT_KIND = "audit_checkpoint"
EVENTS_KIND = "audit_events"


class VerificationInputError(ValueError):
    """A manifest, checkpoint or key file that cannot be read at all, or no key to trust."""


@dataclass(frozen=True)
class Trust:
    """The keys whose signatures count (key id -> PEM), or, with `embedded`, whatever key
    each document carries."""

    keys: Mapping[str, str] = field(default_factory=dict)
    embedded: bool = False

    @classmethod
    def pinned(cls, pems: Iterable[str]) -> "Trust":
        keys = {}
        for pem in pems:
            try:
                keys[fingerprint(load_public_key(pem))] = pem
            except SigningKeyError as exc:
                raise VerificationInputError(str(exc)) from exc
        return cls(keys)

    @classmethod
    def embedded_keys(cls) -> "Trust":
        return cls(embedded=True)

    def check(self, document: Mapping) -> tuple[bool, str]:
        if self.embedded:
            carried = document.get("public_key")
            if not isinstance(carried, str) or not carried:
                return False, "it carries no public key"
            return verify_document(document, public_key_pem=carried)
        key_id = str(document.get("key_id", ""))
        pem = self.keys.get(key_id.removeprefix(DEVELOPMENT_PREFIX))
        if pem is None:
            expected = " or ".join(self.keys) or "a trusted key"
            return False, f"signed by key {key_id!r}, not by {expected}"
        return verify_document(document, public_key_pem=pem)


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint and where it came from, to name it when it fails."""

    document: dict
    origin: str

    @property
    def seq(self) -> int:
        return self.document["seq"]


@dataclass
class Finding:
    text: str
    ok: bool = True
    first_bad_seq: int | None = None


@dataclass
class Report:
    chain: VerifyResult
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.chain.ok and all(f.ok for f in self.findings)

    @property
    def first_bad_seq(self) -> int | None:
        seqs = [f.first_bad_seq for f in self.findings if not f.ok and f.first_bad_seq]
        if not self.chain.ok and self.chain.first_bad_seq:
            seqs.append(self.chain.first_bad_seq)
        return min(seqs) if seqs else None

    def problems(self) -> list[str]:
        out = [] if self.chain.ok else [self.chain.reason]
        return out + [f.text for f in self.findings if not f.ok]


def load_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise VerificationInputError(f"Cannot read the {what} {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise VerificationInputError(f"The {what} {path} is not JSON: {exc}") from exc
    except RecursionError as exc:
        # The decoder unwinds cleanly from a document nested past the recursion limit.
        raise VerificationInputError(f"The {what} {path} is nested too deeply.") from exc


def load_checkpoints(paths: Iterable[str]) -> list[Checkpoint]:
    """Checkpoint files: one checkpoint, a list of them, or a page of the checkpoints API."""
    found: list[Checkpoint] = []
    for path in paths:
        value = load_json(path, "checkpoint file")
        if isinstance(value, Mapping) and "results" in value:
            value = value["results"]
        items = value if isinstance(value, list) else [value]
        for item in items:
            if (
                not isinstance(item, Mapping)
                or item.get("kind") != CHECKPOINT_KIND
                or type(item.get("seq")) is not int
            ):
                raise VerificationInputError(f"{path} holds something other than checkpoints.")
            found.append(Checkpoint(dict(item), f"from {path}"))
    return found


def read_public_key(path: str) -> str:
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise VerificationInputError(f"Cannot read the public key {path}: {exc}") from exc


class _Tap:
    """Passes a file's lines through, hashing every byte and noting hashes at some seqs."""

    def __init__(self, handle: BinaryIO, wanted: set[int]):
        self.handle = handle
        self.digest = hashlib.sha256()
        self.rows = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.wanted = wanted
        self.hashes: dict[int, Any] = {}

    def lines(self) -> Iterator[bytes]:
        for line in self.handle:
            self.digest.update(line)
            if line.strip():
                self.rows += 1
            yield line

    def events(self) -> Iterator[dict]:
        for event in iter_jsonl(self.lines()):
            seq = event.get("seq")
            if type(seq) is int:
                self.first_seq = seq if self.first_seq is None else self.first_seq
                self.last_seq = seq
                if seq in self.wanted:
                    self.hashes[seq] = event.get("hash")
            yield event

    def drain(self) -> None:
        for _ in self.lines():
            pass


def verify_file(
    handle: BinaryIO,
    *,
    manifest: Mapping | None = None,
    trust: Trust | None = None,
    checkpoints: list[Checkpoint] = (),
) -> Report:
    """A JSON Lines export. Unfiltered: the whole chain from seq 1. Filtered (as its
    manifest says): each event's own hash. Then the manifest and the checkpoints, whose
    signatures must come from `trust`."""
    if trust is None and (manifest is not None or checkpoints):
        raise ValueError("Signed documents are checked against a Trust; none was given.")
    filtered = bool(manifest and manifest.get("filters"))
    tap = _Tap(handle, {c.seq for c in checkpoints})
    chain = verify_each(tap.events()) if filtered else verify_events(tap.events())
    tap.drain()
    report = Report(chain)
    if filtered:
        report.findings.append(
            Finding(
                "A filtered export: each event's hash was checked, and the links between "
                "consecutive events; the manifest vouches for the rest."
            )
        )
    if manifest is not None:
        report.findings += _manifest_findings(manifest, tap, chain, trust, filtered)
    if checkpoints:
        if filtered:
            report.findings.append(
                Finding("Checkpoints are checked against unfiltered exports only.", ok=False)
            )
        else:
            report.findings += checkpoint_findings(
                checkpoints, end_seq=chain.events_checked, hashes=tap.hashes, trust=trust
            )
    return report


def _manifest_findings(manifest, tap: _Tap, chain, trust: Trust, filtered) -> list[Finding]:
    signed, who = trust.check(manifest)
    if not signed:
        return [Finding(f"The manifest's signature does not verify: {who}.", ok=False)]
    carried = " (checked with the key the manifest carries)" if trust.embedded else ""
    findings = [Finding(f"Manifest signature valid, {who}{carried}.")]
    if manifest.get("kind") != EVENTS_KIND or manifest.get("format") != "jsonl":
        findings.append(
            Finding("The manifest is not that of a JSON Lines export of events.", ok=False)
        )
        return findings
    if manifest.get("sha256") != tap.digest.hexdigest():
        findings.append(
            Finding(
                f"The file's SHA-256 {tap.digest.hexdigest()} is not the manifest's "
                f"{manifest.get('sha256')}: the file is not the export that was signed.",
                ok=False,
            )
        )
    if manifest.get("rows") != tap.rows:
        findings.append(
            Finding(f"The file has {tap.rows} rows, the manifest {manifest.get('rows')}.", ok=False)
        )
    expected_last = manifest.get("last_seq")
    if (
        not filtered
        and chain.ok
        and type(expected_last) is int
        and chain.events_checked < expected_last
    ):
        findings.append(
            Finding(
                f"The export ends at seq {chain.events_checked}, the manifest at seq "
                f"{expected_last}: events are missing from the end.",
                ok=False,
                first_bad_seq=chain.events_checked + 1,
            )
        )
    elif manifest.get("first_seq") != tap.first_seq or expected_last != tap.last_seq:
        findings.append(
            Finding(
                f"The file spans seq {tap.first_seq} to {tap.last_seq}, the manifest "
                f"{manifest.get('first_seq')} to {expected_last}.",
                ok=False,
            )
        )
    if not manifest.get("complete", True):
        findings.append(Finding("The manifest records an export that was cut short.", ok=False))
    if all(f.ok for f in findings):
        findings.append(
            Finding(
                f"The file is the signed export: {tap.rows} rows, SHA-256 {manifest['sha256']}, "
                f"chain head at export seq {manifest.get('head_seq')}."
            )
        )
    return findings


def checkpoint_findings(
    checkpoints: Iterable[Checkpoint],
    *,
    end_seq: int,
    hashes: Mapping[int, Any],
    trust: Trust,
) -> list[Finding]:
    """Each checkpoint must be signed by a trusted key, lie within the log, and name the
    hash the log has at its seq. A checkpoint beyond the end means the newest events were
    removed; one whose hash differs means the chain was rewritten at or before its seq
    (and after the last checkpoint that still matches)."""
    findings: list[Finding] = []
    matched, matching = 0, 0
    for checkpoint in sorted(checkpoints, key=lambda c: c.seq):
        document, seq = checkpoint.document, checkpoint.seq
        at = document.get("created_at")
        signed, who = trust.check(document)
        if not signed:
            findings.append(
                Finding(
                    f"The checkpoint at seq {seq} ({checkpoint.origin}, created {at}) is not "
                    f"validly signed: {who}.",
                    ok=False,
                )
            )
            continue
        if seq > end_seq:
            findings.append(
                Finding(
                    f"A checkpoint signed at {at} has the log reach seq {seq}, but it ends at "
                    f"seq {end_seq}: the newest events were removed.",
                    ok=False,
                    first_bad_seq=end_seq + 1,
                )
            )
        elif seq and hashes.get(seq) != document.get("hash"):
            findings.append(
                Finding(
                    f"The event at seq {seq} does not have the hash the checkpoint signed at "
                    f"{at} names: the chain was rewritten after seq {matched} and at or "
                    f"before seq {seq}.",
                    ok=False,
                    first_bad_seq=matched + 1,
                )
            )
        else:
            matched, matching = seq, matching + 1
            latest = f"seq {seq}, signed at {at}, {who}"
    if matching:
        findings.append(Finding(f"{matching} checkpoint(s) match the log; the latest: {latest}."))
    return findings


def service_public_key() -> str | None:
    """The public half of the key this installation signs with; None where none is
    configured (outside DEBUG, without AUDIT_SIGNING_KEY)."""
    from audits.signing import SigningKeyMissing, signing_key

    try:
        return signing_key().public_pem
    except SigningKeyMissing:
        return None
    except SigningKeyError as exc:
        raise VerificationInputError(str(exc)) from exc


def verify_database(
    *, checkpoints: list[Checkpoint] = (), public_keys: Iterable[str] = ()
) -> Report:
    """The stored chain, then every stored checkpoint and any given ones, each of which
    must be signed by the service's own key or one of `public_keys`."""
    from audits.selectors import checkpoint_list, hashes_at, verify_stored_chain
    from audits.services import checkpoint_document

    chain = verify_stored_chain()
    stored = [Checkpoint(checkpoint_document(c), f"stored, id {c.pk}") for c in checkpoint_list()]
    report = Report(chain)
    if not chain.ok:
        return report
    every = stored + list(checkpoints)
    if not every:
        report.findings.append(Finding("No checkpoint to compare with."))
        return report
    pems = [pem for pem in (service_public_key(), *public_keys) if pem]
    if not pems:
        raise VerificationInputError(
            "The checkpoints can be checked only against a key you trust: run with the "
            "service's AUDIT_SIGNING_KEY, or pass its public key with --public-key."
        )
    report.findings += checkpoint_findings(
        every,
        end_seq=chain.events_checked,
        hashes=hashes_at({c.seq for c in every}),
        trust=Trust.pinned(pems),
    )
    return report
