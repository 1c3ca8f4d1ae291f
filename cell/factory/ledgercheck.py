"""Verification of a ledger from genesis, and fork detection between signed tree heads.

Every failure raises :class:`LedgerError` naming the first bad line (``index``) and record (``seq``):
malformed lines, a gap or repeat in the sequence (reordering, deletion), a record id seen before
(replay), an unknown or expelled author, a bad signature (tampering), a tree head whose root does not
match the records (tampering that re-signed nothing), a head whose timestamp does not increase, two heads
of one size with different roots (a fork), and records left without a signed head.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .crypto import b64d, verify_sig
from .errors import AuthError, LedgerError
from .ledger import KINDS, MAX_LINE, leaf_of, record_payload, sth_payload
from .merkle import MerkleTree, leaf_hash, verify_consistency
from .registry import Member, Registry

__all__ = ["LedgerState", "apply_membership", "check_fork", "check_record", "compare", "verify_file",
           "verify_lines"]


@dataclass
class LedgerState:
    """What verification rebuilt: the tree, the member keys, the record ids and the signed heads."""

    tree: MerkleTree = field(default_factory=MerkleTree)
    registry: Registry | None = None
    ids: set[str] = field(default_factory=set)
    heads: list[dict[str, Any]] = field(default_factory=list)
    head_roots: dict[int, str] = field(default_factory=dict)
    last_sth_ts: float = 0.0
    kinds: dict[str, int] = field(default_factory=dict)
    records: list[dict[str, Any]] = field(default_factory=list)


def check_record(rec: Any, sig: Any, seq: int, registry: Registry | None, ids: set[str], *,
                 genesis_ok: bool) -> None:
    """Raise :class:`LedgerError` unless ``rec`` is a well-formed record validly signed by a member."""
    if not isinstance(rec, dict) or set(rec) != {"id", "ts", "author", "kind", "body"} or not isinstance(sig, str):
        raise LedgerError(f"record {seq}: malformed", seq=seq)
    if not isinstance(rec["id"], str) or not isinstance(rec["body"], dict) or rec["kind"] not in KINDS:
        raise LedgerError(f"record {seq}: malformed id, kind or body", seq=seq)
    if not isinstance(rec["ts"], int | float) or rec["ts"] != rec["ts"]:
        raise LedgerError(f"record {seq}: bad timestamp", seq=seq)
    if rec["id"] in ids:
        raise LedgerError(f"record {seq}: id {rec['id']} appears earlier in the ledger (replayed record)", seq=seq)
    if (rec["kind"] == "genesis") != genesis_ok:
        raise LedgerError(f"record {seq}: a genesis record must be record 0 and only record 0", seq=seq)
    if genesis_ok:
        try:
            registry = Registry.from_signed(rec["body"].get("registry"))
        except AuthError as exc:
            raise LedgerError(f"record 0: genesis registry refused: {exc}", seq=seq) from exc
    assert registry is not None
    if rec["author"] not in registry.members:
        raise LedgerError(f"record {seq}: author {rec['author']!r} is not a member at this point", seq=seq)
    try:
        ok = verify_sig(registry.key(rec["author"]), record_payload(rec), b64d(sig, size=64))
    except AuthError:
        ok = False
    if not ok:
        raise LedgerError(f"record {seq}: signature of {rec['author']} does not verify (tampered)", seq=seq)


def apply_membership(registry: Registry | None, rec: dict[str, Any]) -> None:
    """Admissions and expulsions (outcomes of votes) change which keys verify later records."""
    if registry is None:
        return
    if rec["kind"] == "member-admitted":
        registry.add(Member.from_dict(rec["body"].get("member")))
    elif rec["kind"] == "member-expelled":
        registry.remove(str(rec["body"].get("id")))


def _check_head(head: dict[str, Any], st: LedgerState, index: int) -> None:
    size, root, ts, signer = (head.get(k) for k in ("size", "root", "ts", "signer"))
    n = len(st.tree)
    if not isinstance(size, int) or not isinstance(root, str) or not isinstance(ts, int | float):
        raise LedgerError(f"line {index}: malformed tree head", index=index)
    if not 1 <= size <= n:
        raise LedgerError(f"line {index}: tree head of size {size} but {n} records so far", index=index)
    if st.registry is None or signer not in st.registry.members:
        raise LedgerError(f"line {index}: tree head signer {signer!r} is not a member", index=index)
    try:
        sig = b64d(head.get("sig", ""), size=64)
        ok = verify_sig(st.registry.key(signer), sth_payload(size, root, ts, signer), sig)
    except AuthError:
        ok = False
    if not ok:
        raise LedgerError(f"line {index}: tree head signature of {signer} does not verify", index=index)
    if ts <= st.last_sth_ts:
        raise LedgerError(f"line {index}: tree head timestamp {ts} does not increase (replayed head?)", index=index)
    if st.head_roots.get(size, root) != root:
        raise LedgerError(f"line {index}: fork: two signed heads of size {size} with different roots",
                          index=index, seq=size - 1)
    if st.tree.root(size).hex() != root:
        raise LedgerError(f"record {size - 1}: records do not hash to the signed head of size {size} "
                          f"(record {size - 1} or one before it was altered or reordered)", index=index, seq=size - 1)
    st.last_sth_ts = ts
    st.heads.append(head)
    st.head_roots[size] = root


def _line(raw: bytes, index: int) -> dict[str, Any]:
    if len(raw) > MAX_LINE:
        raise LedgerError(f"line {index}: {len(raw)} bytes is over the {MAX_LINE} byte limit", index=index)
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise LedgerError(f"line {index}: not JSON ({exc})", index=index) from exc
    if not isinstance(obj, dict) or obj.get("t") not in ("rec", "sth"):
        raise LedgerError(f"line {index}: neither a record nor a tree head", index=index)
    return obj


def verify_lines(lines: list[bytes], *, pin_admin: str | None = None, keep: bool = False) -> LedgerState:
    """Verify a ledger's lines from genesis; returns the rebuilt state or raises :class:`LedgerError`."""
    st = LedgerState()
    for index, raw in enumerate(lines):
        obj = _line(raw, index)
        if obj["t"] == "sth":
            _check_head(obj, st, index)
            continue
        seq = len(st.tree)
        if obj.get("seq") != seq:
            raise LedgerError(f"record {seq} (line {index}): found seq {obj.get('seq')!r} where {seq} belongs "
                              "(reordered, deleted or duplicated record)", index=index, seq=seq)
        try:
            check_record(obj.get("rec"), obj.get("sig"), seq, st.registry, st.ids, genesis_ok=(seq == 0))
        except LedgerError as exc:
            exc.index = index
            raise
        rec = obj["rec"]
        if seq == 0:
            try:
                st.registry = Registry.from_signed(rec["body"]["registry"], pin_admin=pin_admin)
            except AuthError as exc:
                raise LedgerError(f"record 0: genesis registry refused: {exc}", index=index, seq=0) from exc
        apply_membership(st.registry, rec)
        st.ids.add(rec["id"])
        st.kinds[rec["kind"]] = st.kinds.get(rec["kind"], 0) + 1
        if keep:
            st.records.append(rec)
        st.tree.append_hash(leaf_hash(leaf_of(seq, rec, obj["sig"])))
    n = len(st.tree)
    if n == 0:
        raise LedgerError("empty ledger: no genesis record", index=0)
    if not st.heads or st.heads[-1]["size"] != n:
        covered = st.heads[-1]["size"] if st.heads else 0
        raise LedgerError(f"record {covered}: records {covered}..{n - 1} are not covered by a signed tree head",
                          seq=covered)
    return st


def verify_file(path: str | Path, *, pin_admin: str | None = None, keep: bool = False) -> LedgerState:
    """Verify a ledger file from genesis (a missing final newline is a torn write and is reported)."""
    raw = Path(path).read_bytes()
    lines = raw.splitlines()
    if raw and not raw.endswith(b"\n"):
        raise LedgerError(f"line {len(lines) - 1}: torn last line (the writer stopped mid-write)",
                          index=len(lines) - 1)
    return verify_lines(lines, pin_admin=pin_admin, keep=keep)


def check_fork(a: dict[str, Any], b: dict[str, Any], proof: list[bytes] | None = None) -> None:
    """Raise :class:`LedgerError` when two (already verified) signed heads cannot both be true.

    Heads of one size must have one root; for different sizes, ``proof`` is the consistency proof from
    the smaller to the larger (RFC 9162 §2.1.4) and must verify.
    """
    small, large = (a, b) if a["size"] <= b["size"] else (b, a)
    if small["size"] == large["size"]:
        if small["root"] != large["root"]:
            raise LedgerError(f"fork: two signed heads of size {small['size']} with different roots",
                              seq=small["size"] - 1)
        return
    ok = proof is not None and verify_consistency(small["size"], bytes.fromhex(small["root"]), large["size"],
                                                  bytes.fromhex(large["root"]), proof)
    if not ok:
        raise LedgerError(f"fork: the head of size {large['size']} does not extend the head of size "
                          f"{small['size']} (consistency proof fails)", seq=small["size"] - 1)


def compare(a: LedgerState, b: LedgerState) -> None:
    """Check two verified copies of one ledger against each other: every pair of heads must agree."""
    longer, shorter = (a, b) if len(a.tree) >= len(b.tree) else (b, a)
    big = longer.heads[-1]
    for h in shorter.heads:
        check_fork(h, big, longer.tree.consistency_proof(h["size"], big["size"]))
