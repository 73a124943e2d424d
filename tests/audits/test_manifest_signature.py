"""The export manifest: signed with Ed25519 over its canonical JSON, checked against the
public key the service publishes, and failing once a single byte of the export changes."""

import base64
import hashlib
import io
import json
import logging

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from audits import signing
from tests.audits.conftest import download

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_keys():
    signing._key_from.cache_clear()
    yield
    signing._key_from.cache_clear()


def take(reader, query: str, tmp_path, name: str = "export"):
    response = reader.get(f"/api/v1/audit/export/?{query}")
    body = download(response)
    manifest = reader.get(f"/api/v1/audit/exports/{response['X-Audit-Export-Id']}/manifest/")
    assert manifest.status_code == 200
    key = reader.get("/api/v1/audit/public-key/")
    paths = {
        "file": tmp_path / f"{name}.jsonl",
        "manifest": tmp_path / f"{name}.manifest.json",
        "key": tmp_path / "audit-key.pem",
    }
    paths["file"].write_bytes(body)
    paths["manifest"].write_text(json.dumps(manifest.json()))
    paths["key"].write_bytes(key.content)
    return body, manifest.json(), key, paths


def verify(paths, *extra) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    args = ["--file", str(paths["file"]), "--manifest", str(paths["manifest"]), *extra]
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def test_the_manifest_signature_verifies_with_the_published_key(known_log, reader, tmp_path):
    body, manifest, key, _ = take(reader, "format=jsonl", tmp_path)

    public = serialization.load_pem_public_key(key.content)
    signed = {k: v for k, v in manifest.items() if k != "signature"}
    canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    public.verify(base64.b64decode(manifest["signature"]), canonical.encode())
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    assert (manifest["rows"], manifest["first_seq"], manifest["last_seq"]) == (5, 1, 5)
    assert (manifest["head_seq"], manifest["head_hash"]) == (5, known_log[4]["hash"])
    assert manifest["filters"] == {}
    assert manifest["key_id"] == key["X-Audit-Key-Id"]

    tampered = {**signed, "rows": 4}
    with pytest.raises(InvalidSignature):
        public.verify(
            base64.b64decode(manifest["signature"]),
            json.dumps(tampered, sort_keys=True, separators=(",", ":")).encode(),
        )


def test_verify_audit_accepts_the_export_with_its_manifest(known_log, reader, tmp_path):
    _, manifest, _, paths = take(reader, "format=jsonl", tmp_path)
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert code == 0, message
    assert f"Manifest signature valid, signed by {manifest['key_id']}." in message
    assert f"The file is the signed export: 5 rows, SHA-256 {manifest['sha256']}" in message


@pytest.mark.parametrize(
    ("old", "new", "bad_seq"),
    [
        # A byte of content: the chain breaks and the digest no longer matches.
        (b'"actor": "rita"', b'"actor": "ritb"', 3),
        # A byte of mere whitespace: the chain still holds; the digest does not.
        (b'"seq": 2, ', b'"seq":\t2, ', None),
    ],
    ids=["content", "whitespace"],
)
def test_one_changed_byte_fails_the_manifest(known_log, reader, tmp_path, old, new, bad_seq):
    body, _, _, paths = take(reader, "format=jsonl", tmp_path)
    assert body.count(old) == 1 and len(old) == len(new)
    paths["file"].write_bytes(body.replace(old, new))
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert code == 1
    assert "is not the manifest's" in message and "is not the export that was signed" in message
    if bad_seq:
        assert message.startswith(f"TAMPERED: first bad seq {bad_seq} in ")


def test_a_removed_last_line_is_named_by_the_manifest(known_log, reader, tmp_path):
    body, _, _, paths = take(reader, "format=jsonl", tmp_path)
    lines = body.splitlines(keepends=True)
    paths["file"].write_bytes(b"".join(lines[:-1]))
    # The chain alone cannot tell a shortened export from a shorter one...
    out = io.StringIO()
    call_command("verify_audit", "--file", str(paths["file"]), stdout=out)
    assert out.getvalue().startswith("OK: 4 events")
    # ...the manifest can.
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert code == 1
    assert message.startswith("TAMPERED: first bad seq 5 in ")
    assert "events are missing from the end" in message


def test_an_edited_manifest_or_another_key_fails(known_log, reader, tmp_path):
    _, manifest, _, paths = take(reader, "format=jsonl", tmp_path)
    paths["manifest"].write_text(json.dumps({**manifest, "head_seq": 4}))
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert (code, "the signature does not match the document" in message) == (1, True)

    paths["manifest"].write_text(json.dumps(manifest))
    other = tmp_path / "other.pem"
    other.write_text(signing.public_pem(Ed25519PrivateKey.generate().public_key()))
    code, message = verify(paths, "--public-key", str(other))
    assert code == 1
    assert f"signed by key '{manifest['key_id']}', not by ed25519:" in message


def test_a_filtered_export_checks_each_event_and_the_manifest(known_log, reader, tmp_path):
    body, manifest, _, paths = take(reader, "format=jsonl&actor=olivia", tmp_path)
    assert manifest["filters"] == {"actor": "olivia"}
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert code == 0, message
    assert "A filtered export: each event's hash was checked" in message

    paths["file"].write_bytes(body.replace(b'"risk_tier": "low"', b'"risk_tier": "top"'))
    code, message = verify(paths, "--public-key", str(paths["key"]))
    assert code == 1
    assert message.startswith("TAMPERED: first bad seq 5 in ")


def test_a_configured_pem_or_seed_signs(settings):
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    raw = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    expected_id = signing.fingerprint(private.public_key())
    for configured in (pem, pem.replace("\n", "\\n"), base64.b64encode(raw).decode()):
        settings.AUDIT_SIGNING_KEY = configured
        document = signing.sign_document({"kind": "test", "n": 1})
        assert document["key_id"] == expected_id
        assert signing.verify_document(
            document, public_key_pem=signing.public_pem(private.public_key())
        ) == (True, f"signed by {expected_id}")


def test_an_unset_key_signs_with_the_development_key_only_with_debug_on(settings, caplog):
    settings.AUDIT_SIGNING_KEY = ""
    settings.DEBUG = True
    with caplog.at_level(logging.WARNING, logger="modelgov.audit"):
        document = signing.sign_document({"kind": "test"})
    assert document["key_id"].startswith("dev-ed25519:")
    assert "AUDIT_SIGNING_KEY is not set" in caplog.text

    settings.DEBUG = False
    with pytest.raises(signing.SigningKeyMissing, match="AUDIT_SIGNING_KEY is not set"):
        signing.sign_document({"kind": "test"})


def test_a_malformed_key_is_refused_with_or_without_debug(settings):
    for debug in (False, True):
        settings.DEBUG = debug
        for bad in ("not a key", base64.b64encode(b"short").decode()):
            settings.AUDIT_SIGNING_KEY = bad
            with pytest.raises(signing.SigningKeyError, match="AUDIT_SIGNING_KEY"):
                signing.signing_key()
