"""Signatures count only from keys the verifier trusts: a checkpoint an insider signs with
a key of their own and inserts in the database (or hands over as a file) fails, and a
manifest is checked against a public key given, or explicitly against the one it carries."""

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils.dateparse import parse_datetime

from audits import signing
from audits.context import audit_context
from audits.models import AuditCheckpoint
from audits.selectors import event_dicts
from audits.services import audit_checkpoint_create, checkpoint_document
from tests.audits.conftest import download
from tests.audits.conftest import verify_audit as verify

pytestmark = pytest.mark.django_db


def seed() -> str:
    return base64.b64encode(Ed25519PrivateKey.generate().private_bytes_raw()).decode()


def forged_checkpoint(private: Ed25519PrivateKey, seq: int, hash: str) -> dict:
    """A checkpoint in every way like the service's, but signed with `private`."""
    public = private.public_key()
    document = {
        "kind": "audit_checkpoint",
        "seq": seq,
        "hash": hash,
        "created_at": "2026-03-03T09:00:00.000000Z",
        "key_id": signing.fingerprint(public),
        "public_key": signing.public_pem(public),
    }
    signature = private.sign(signing.signed_bytes(document))
    return {**document, "signature": base64.b64encode(signature).decode()}


def insert(document: dict) -> AuditCheckpoint:
    """What someone with write access to the database can do: the append-only triggers
    refuse UPDATE and DELETE, not INSERT."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO audits_auditcheckpoint "
            "(seq, hash, created_at, key_id, public_key, signature) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                document["seq"],
                document["hash"],
                parse_datetime(document["created_at"]),
                document["key_id"],
                document["public_key"],
                document["signature"],
            ],
        )
    return AuditCheckpoint.objects.get(signature=document["signature"])


def take_checkpoint() -> AuditCheckpoint:
    with audit_context(request_id="cp"):
        return audit_checkpoint_create(actor=None)


def head() -> tuple[int, str]:
    last = list(event_dicts())[-1]
    return last["seq"], last["hash"]


def write_key(path, pem: str):
    path.write_text(pem)
    return str(path)


def test_a_checkpoint_inserted_with_another_key_fails_naming_it(known_log):
    take_checkpoint()
    assert verify()[0] == 0
    forger = Ed25519PrivateKey.generate()
    row = insert(forged_checkpoint(forger, *head()))

    code, message = verify()

    assert code == 1
    assert f"The checkpoint at seq 6 (stored, id {row.pk}, created " in message
    service = signing.signing_key().key_id
    assert f"signed by key '{signing.fingerprint(forger.public_key())}', not by {service}" in (
        message
    )


def test_a_forged_checkpoint_file_fails_too(known_log, reader, tmp_path):
    take_checkpoint()
    forged = tmp_path / "checkpoint.json"
    forged.write_text(json.dumps(forged_checkpoint(Ed25519PrivateKey.generate(), *head())))

    code, message = verify("--checkpoint", str(forged))
    assert code == 1
    assert f"The checkpoint at seq 6 (from {forged}, created " in message
    assert "is not validly signed: signed by key 'ed25519:" in message

    export = tmp_path / "audit.jsonl"
    export.write_bytes(download(reader.get("/api/v1/audit/export/?format=jsonl")))
    key = write_key(tmp_path / "audit-key.pem", signing.signing_key().public_pem)
    code, message = verify("--file", str(export), "--checkpoint", str(forged), "--public-key", key)
    assert code == 1
    assert f"The checkpoint at seq 6 (from {forged}, created " in message


def test_checkpoints_of_an_earlier_key_count_when_it_is_given(known_log, settings, tmp_path):
    earlier = seed()
    settings.AUDIT_SIGNING_KEY = earlier
    earlier_pem = signing.signing_key().public_pem
    take_checkpoint()
    settings.AUDIT_SIGNING_KEY = seed()
    take_checkpoint()

    code, message = verify()
    assert code == 1
    assert "The checkpoint at seq 5 (stored, id " in message

    code, message = verify("--public-key", write_key(tmp_path / "earlier.pem", earlier_pem))
    assert code == 0, message
    assert "2 checkpoint(s) match the log" in message


def test_without_the_services_key_the_checkpoints_need_one_given(known_log, settings, tmp_path):
    take_checkpoint()
    service_pem = signing.signing_key().public_pem
    settings.AUDIT_SIGNING_KEY = ""

    with pytest.raises(CommandError, match="--public-key"):
        call_command("verify_audit")
    code, message = verify("--public-key", write_key(tmp_path / "audit-key.pem", service_pem))
    assert code == 0, message
    assert "1 checkpoint(s) match the log" in message


@pytest.fixture
def export(known_log, reader, tmp_path):
    """A checkpoint, then an export, its manifest and the service's public key, as files."""
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(checkpoint_document(take_checkpoint())))
    response = reader.get("/api/v1/audit/export/?format=jsonl")
    path = tmp_path / "audit.jsonl"
    path.write_bytes(download(response))
    manifest = tmp_path / "audit.manifest.json"
    export_id = response["X-Audit-Export-Id"]
    manifest.write_bytes(reader.get(f"/api/v1/audit/exports/{export_id}/manifest/").content)
    key = write_key(tmp_path / "audit-key.pem", signing.signing_key().public_pem)
    return str(path), str(manifest), str(saved), key


def test_a_manifest_needs_a_public_key_or_trust_in_the_one_it_carries(export):
    path, manifest, _, key = export
    with pytest.raises(CommandError, match="--public-key") as refused:
        call_command("verify_audit", "--file", path, "--manifest", manifest)
    assert "--trust-embedded-key" in str(refused.value)

    code, message = verify("--file", path, "--manifest", manifest, "--trust-embedded-key")
    assert code == 0, message
    assert "checked with the key the manifest carries" in message
    assert "Integrity, not authorship" in message

    code, message = verify("--file", path, "--manifest", manifest, "--public-key", key)
    assert code == 0, message
    assert "Integrity, not authorship" not in message


def test_a_checkpoint_file_beside_an_export_needs_a_key_too(export):
    path, _, saved, key = export
    with pytest.raises(CommandError, match="--public-key"):
        call_command("verify_audit", "--file", path, "--checkpoint", saved)

    code, message = verify("--file", path, "--checkpoint", saved, "--trust-embedded-key")
    assert code == 0, message
    assert "Integrity, not authorship" in message
    code, message = verify("--file", path, "--checkpoint", saved, "--public-key", key)
    assert code == 0, message


def test_trusting_the_embedded_key_is_for_files_only(known_log):
    with pytest.raises(CommandError, match="goes with --file"):
        call_command("verify_audit", "--trust-embedded-key")


def test_a_manifest_nested_past_any_sense_is_refused_not_a_crash(export, tmp_path):
    path, _, _, key = export
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 10_000 + "]" * 10_000)
    for option in ("--manifest", "--checkpoint"):
        with pytest.raises(CommandError, match="nested too deeply"):
            call_command("verify_audit", "--file", path, option, str(deep), "--public-key", key)
