"""Ed25519 signatures over export manifests and chain checkpoints.

A signed document is a JSON object whose "signature" is the base64 Ed25519
signature of the canonical JSON of all its other fields (sorted keys, no spaces,
UTF-8), "public_key" and "key_id" included. Checking one needs only this module's
verify_document() and the public key, so it works offline.
"""

import base64
import binascii
import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

logger = logging.getLogger("modelgov.audit")

DEVELOPMENT_PREFIX = "dev-"


class SigningKeyError(ValueError):
    pass


class SigningKeyMissing(SigningKeyError):
    """No AUDIT_SIGNING_KEY, outside DEBUG: nothing may be signed."""


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey
    key_id: str
    public_pem: str
    development: bool


def signed_bytes(document: Mapping) -> bytes:
    body = {key: value for key, value in document.items() if key != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def fingerprint(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(value: str) -> Ed25519PrivateKey:
    """A PEM private key (PKCS#8; "\\n" may stand for newlines), or base64 of a 32-byte seed."""
    text = value.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(
                text.replace("\\n", "\n").encode(), password=None
            )
        except (ValueError, TypeError) as exc:
            raise SigningKeyError(f"AUDIT_SIGNING_KEY is not a readable PEM key: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError("AUDIT_SIGNING_KEY must be an Ed25519 key.")
        return key
    try:
        seed = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise SigningKeyError("AUDIT_SIGNING_KEY is neither PEM nor base64.") from exc
    if len(seed) != 32:
        raise SigningKeyError("A base64 AUDIT_SIGNING_KEY must decode to exactly 32 bytes.")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_public_key(pem: str) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"Not a readable PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("The public key is not an Ed25519 key.")
    return key


@lru_cache(maxsize=4)
def _key_from(configured: str, secret_key: str, debug: bool) -> SigningKey:
    if configured:
        private = load_private_key(configured)
        development = False
    elif not debug:
        raise SigningKeyMissing(
            "AUDIT_SIGNING_KEY is not set: with DEBUG off, audit manifests and checkpoints "
            "are signed only with a configured key."
        )
    else:
        # Reproducible across processes and restarts of one installation, so its
        # signatures keep verifying; worthless to anyone who knows SECRET_KEY.
        seed = hashlib.sha256(b"modelgov audit signing key\n" + secret_key.encode()).digest()
        private = Ed25519PrivateKey.from_private_bytes(seed)
        development = True
        logger.warning(
            "AUDIT_SIGNING_KEY is not set: audit manifests and checkpoints are signed with a "
            "development key derived from SECRET_KEY (key_id starts with %r).",
            DEVELOPMENT_PREFIX,
        )
    public = private.public_key()
    key_id = (DEVELOPMENT_PREFIX if development else "") + fingerprint(public)
    return SigningKey(private, key_id, public_pem(public), development)


def signing_key() -> SigningKey:
    """The configured key; with DEBUG on and none configured, the development key.
    Raises SigningKeyError when the configured key cannot be read, SigningKeyMissing
    when there is none outside DEBUG (the system checks refuse to start then)."""
    from django.conf import settings

    return _key_from(settings.AUDIT_SIGNING_KEY or "", settings.SECRET_KEY, settings.DEBUG)


def sign_document(fields: Mapping) -> dict:
    """`fields` plus key_id, public_key and the signature over all of them."""
    key = signing_key()
    document = {**fields, "key_id": key.key_id, "public_key": key.public_pem}
    signature = key.private.sign(signed_bytes(document))
    return {**document, "signature": base64.b64encode(signature).decode("ascii")}


def verify_document(document: Mapping, *, public_key_pem: str) -> tuple[bool, str]:
    """Check a signed document against `public_key_pem`. Given the key the document
    carries, this proves it unchanged since signing, not who signed it."""
    try:
        public = load_public_key(public_key_pem)
    except SigningKeyError as exc:
        return False, str(exc)
    if str(document.get("key_id", "")).removeprefix(DEVELOPMENT_PREFIX) != fingerprint(public):
        return False, f"signed by key {document.get('key_id')!r}, not by {fingerprint(public)}"
    try:
        signature = base64.b64decode(str(document.get("signature", "")), validate=True)
        public.verify(signature, signed_bytes(document))
    except (binascii.Error, InvalidSignature):
        return False, "the signature does not match the document"
    return True, f"signed by {document['key_id']}"
