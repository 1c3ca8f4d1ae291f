"""The factory ledger: append-only JSON lines, RFC 6962 Merkle-hashed, every record and tree head signed.

File format ``gluecell.ledger/1`` (one JSON object per line)::

    {"t": "rec", "seq": n, "rec": {"id", "ts", "author", "kind", "body"}, "sig": author's signature}
    {"t": "sth", "size": n, "root": hex, "ts": s, "signer": id, "sig": writer's signature}

A record's author signs ``"gluecell.record/1\\n" + canonical(rec)``; its Merkle leaf is the canonical
JSON of ``{"seq", "rec", "sig"}``. The writer (the manager) appends a signed tree head after every
append, with strictly increasing timestamps. Record 0 is the genesis: the administrator-signed registry,
whose member keys verify everything after it; ``member-admitted`` / ``member-expelled`` records (the
outcome of votes) change the key set. Verification (:mod:`.ledgercheck`) replays everything from genesis.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from .crypto import Identity, b64e, canonical
from .errors import AuthError, LedgerError
from .merkle import MerkleTree, leaf_hash
from .registry import Registry

__all__ = ["FORMAT", "KINDS", "Ledger", "leaf_of", "make_record", "record_payload", "sth_payload"]

FORMAT = "gluecell.ledger/1"
#: Kinds of record; anything else is refused on append and on verification.
KINDS = (
    "genesis", "register", "cfp", "award", "result", "failure", "alarm", "late-result", "vote-proposal",
    "vote", "vote-outcome", "override", "member-admitted", "member-expelled", "product", "refused",
)
MAX_LINE = 256 * 1024


def record_payload(rec: dict[str, Any]) -> bytes:
    """The exact bytes a record's author signs."""
    return b"gluecell.record/1\n" + canonical(rec)


def sth_payload(size: int, root: str, ts: float, signer: str) -> bytes:
    """The exact bytes a signed tree head's writer signs."""
    return b"gluecell.sth/1\n" + canonical({"size": size, "root": root, "ts": ts, "signer": signer})


def leaf_of(seq: int, rec: dict[str, Any], sig: str) -> bytes:
    """The Merkle leaf data of record ``seq``."""
    return canonical({"seq": seq, "rec": rec, "sig": sig})


def make_record(author: Identity, kind: str, body: dict[str, Any], *, ts: float | None = None) -> dict[str, Any]:
    """A record signed by its author, ready to be appended (``{"rec": ..., "sig": ...}``)."""
    if kind not in KINDS:
        raise LedgerError(f"unknown record kind {kind!r}")
    rec = {"id": uuid.uuid4().hex, "ts": time.time() if ts is None else ts, "author": author.id,
           "kind": kind, "body": body}
    return {"rec": rec, "sig": b64e(author.sign(record_payload(rec)))}


class Ledger:
    """A ledger file this process writes (one writer per file; thread-safe appends)."""

    def __init__(self, path: Path, writer: Identity, sync: bool) -> None:
        self.path, self.writer, self.sync = path, writer, sync
        self.tree = MerkleTree()
        self.registry: Registry | None = None
        self.ids: set[str] = set()
        self.last_ts = 0.0
        self.heads: list[dict[str, Any]] = []
        self.recovered: list[dict[str, Any]] = []  # the records found by :meth:`open`
        self._lock = threading.Lock()

    @classmethod
    def create(cls, path: str | os.PathLike[str], writer: Identity, registry_doc: dict[str, Any], *,
               sync: bool = True) -> Ledger:
        """Start a new ledger whose genesis record holds the signed registry."""
        path = Path(path)
        if path.exists() and path.stat().st_size > 0:
            raise LedgerError(f"{path} already exists; open it instead of starting a new ledger")
        reg = Registry.from_signed(registry_doc)
        if writer.id not in reg.members or reg.get(writer.id).role != "manager":
            raise AuthError(f"{writer.id} is not a manager in the registry; it cannot write the ledger")
        led = cls(path, writer, sync)
        led.registry = reg
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        led.append(make_record(writer, "genesis", {"format": FORMAT, "registry": registry_doc}))
        return led

    @classmethod
    def open(cls, path: str | os.PathLike[str], writer: Identity, *, sync: bool = True,
             pin_admin: str | None = None) -> Ledger:
        """Reopen a ledger for appending after verifying it from genesis (a torn last line is dropped)."""
        import json

        from .ledgercheck import verify_lines

        path = Path(path)
        raw = path.read_bytes()
        cut = len(raw)
        if raw and not raw.endswith(b"\n"):  # a crash mid-write: that line was never acknowledged
            cut = raw.rfind(b"\n") + 1
        last = raw[:cut].rstrip(b"\n").rsplit(b"\n", 1)[-1]
        try:  # a record whose signed head was never written was never acknowledged either
            if last and json.loads(last).get("t") == "rec":
                cut -= len(last) + 1
        except ValueError:
            pass
        if cut < len(raw):
            with open(path, "r+b") as fh:
                fh.truncate(cut)
            raw = raw[:cut]
        state = verify_lines(raw.splitlines(), pin_admin=pin_admin, keep=True)
        led = cls(path, writer, sync)
        led.tree, led.registry, led.ids = state.tree, state.registry, state.ids
        led.heads, led.last_ts = state.heads, state.last_sth_ts
        led.recovered = state.records
        return led

    def __len__(self) -> int:
        return len(self.tree)

    def append(self, signed: dict[str, Any]) -> int:
        """Verify a signed record, append it with a fresh signed tree head; returns its seq."""
        from .ledgercheck import check_record

        with self._lock:
            seq = len(self.tree)
            check_record(signed.get("rec"), signed.get("sig"), seq, self.registry, self.ids,
                         genesis_ok=(seq == 0))
            rec, sig = signed["rec"], signed["sig"]
            if seq == 0:
                self.registry = Registry.from_signed(rec["body"]["registry"])
            from .ledgercheck import apply_membership

            apply_membership(self.registry, rec)
            self.ids.add(rec["id"])
            self.tree.append_hash(leaf_hash(leaf_of(seq, rec, sig)))
            ts = max(time.time(), self.last_ts + 1e-6)
            root = self.tree.root().hex()
            head = {"t": "sth", "size": seq + 1, "root": root, "ts": ts, "signer": self.writer.id,
                    "sig": b64e(self.writer.sign(sth_payload(seq + 1, root, ts, self.writer.id)))}
            lines = canonical({"t": "rec", "seq": seq, "rec": rec, "sig": sig}) + b"\n" + canonical(head) + b"\n"
            with open(self.path, "ab") as fh:
                fh.write(lines)
                fh.flush()
                if self.sync:
                    os.fsync(fh.fileno())
            self.last_ts = ts
            self.heads.append(head)
            return seq

    def add(self, author: Identity, kind: str, body: dict[str, Any]) -> int:
        """Sign a record as ``author`` and append it."""
        return self.append(make_record(author, kind, body))

    def head(self) -> dict[str, Any]:
        """The latest signed tree head."""
        with self._lock:
            return dict(self.heads[-1])
