"""Ed25519 identities, canonical JSON and base64 helpers (``cryptography``).

Every member of the factory has one Ed25519 key pair; the administrator registers the public key
(:mod:`gluecell.cell.factory.registry`). Signatures always cover exact bytes: canonical JSON
(sorted keys, no spaces, UTF-8) for ledger records and tree heads, the exact XML bytes sent for
messages.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AuthError

__all__ = [
    "ID_RE",
    "Identity",
    "b64d",
    "b64e",
    "canonical",
    "check_id",
    "load_identity",
    "public_from_b64",
    "verify_sig",
]

#: Member ids: also MQTT usernames/client ids, so no ``/``, ``+``, ``#`` (nor spaces).
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is a valid member id, else raise :class:`AuthError`."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise AuthError(f"{what} {value!r} is not a valid member id (letters, digits, _ . : -; at most 64)")
    return value


def canonical(obj: Any) -> bytes:
    """Canonical JSON bytes of ``obj`` (sorted keys, compact, UTF-8, no NaN)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def b64e(data: bytes) -> str:
    """Standard base64 text of ``data``."""
    return base64.b64encode(data).decode("ascii")


def b64d(text: str, *, size: int | None = None) -> bytes:
    """Decode strict base64; ``size`` checks the decoded length."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError, AttributeError) as exc:
        raise AuthError(f"bad base64: {exc}") from exc
    if size is not None and len(raw) != size:
        raise AuthError(f"expected {size} bytes, got {len(raw)}")
    return raw


def public_from_b64(text: str) -> Any:
    """An ``Ed25519PublicKey`` from its raw 32 bytes in base64."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(b64d(text, size=32))


def verify_sig(public: Any, data: bytes, sig: bytes) -> bool:
    """True when ``sig`` is a valid Ed25519 signature of ``data`` by ``public``."""
    from cryptography.exceptions import InvalidSignature

    try:
        public.verify(sig, data)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


@dataclass
class Identity:
    """A member's id and private key (never logged, never serialised except by :meth:`save`)."""

    id: str
    private: Any

    @classmethod
    def generate(cls, member_id: str) -> Identity:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        return cls(check_id(member_id), Ed25519PrivateKey.generate())

    @property
    def public_b64(self) -> str:
        """The raw public key, base64 (what the administrator registers)."""
        from cryptography.hazmat.primitives import serialization as s

        raw = self.private.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        return b64e(raw)

    def sign(self, data: bytes) -> bytes:
        """Ed25519 signature of the exact bytes ``data``."""
        return self.private.sign(data)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the private key as PKCS#8 PEM, readable by the owner only (0600)."""
        from cryptography.hazmat.primitives import serialization as s

        pem = self.private.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption())
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(f"# gluecell member {self.id}\n".encode() + pem)
        os.replace(tmp, path)


def load_identity(path: str | os.PathLike[str]) -> Identity:
    """Read a key written by :meth:`Identity.save` (the member id is in its first line)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    raw = Path(path).read_bytes()
    first, _, pem = raw.partition(b"\n")
    if not first.startswith(b"# gluecell member "):
        raise AuthError(f"{path}: not a gluecell key file")
    key = s.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise AuthError(f"{path}: not an Ed25519 key")
    return Identity(check_id(first[len(b"# gluecell member "):].decode().strip()), key)
