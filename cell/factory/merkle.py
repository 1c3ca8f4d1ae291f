"""Merkle tree hashing after RFC 6962 §2.1 / RFC 9162 §2.1 (SHA-256, leaf prefix 0x00, node prefix 0x01).

:class:`MerkleTree` keeps every perfect subtree hash (``levels[h][i]`` covers leaves
``i*2**h .. (i+1)*2**h - 1``), so appends cost O(log n) and any ``MTH(D[lo:hi])`` is a few lookups.
Proof generation follows RFC 6962 §2.1.1 (PATH) and §2.1.2 (PROOF / SUBPROOF); verification follows
RFC 9162 §2.1.3.2 and §2.1.4.2. Verifiers return ``False`` on any malformed input, never raise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "leaf_hash",
    "node_hash",
    "split_point",
    "verify_consistency",
    "verify_inclusion",
]

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    """``SHA-256(0x00 || data)``."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (``n >= 2``)."""
    if n < 2:
        raise ValueError(f"split_point needs n >= 2, got {n}")
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only RFC 6962 tree over leaf hashes."""

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        for h in leaf_hashes:
            self.append_hash(h)

    def __len__(self) -> int:
        return len(self.levels[0])

    def append(self, data: bytes) -> int:
        """Append a leaf by its data; returns its index."""
        return self.append_hash(leaf_hash(data))

    def append_hash(self, h: bytes) -> int:
        """Append a leaf by its hash; returns its index."""
        index = len(self.levels[0])
        self.levels[0].append(h)
        level, i = 0, index
        while i % 2 == 1:  # a right child completes a perfect subtree one level up
            parent = node_hash(self.levels[level][i - 1], self.levels[level][i])
            level, i = level + 1, i // 2
            if len(self.levels) <= level:
                self.levels.append([])
            self.levels[level].append(parent)
        return index

    def subtree(self, lo: int, hi: int) -> bytes:
        """``MTH(D[lo:hi])`` for ``0 <= lo <= hi <= len(self)``."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0 and lo % n == 0:
            level = n.bit_length() - 1
            return self.levels[level][lo >> level]
        k = split_point(n)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        """The tree head of the first ``size`` leaves (default: all)."""
        size = len(self) if size is None else size
        if not 0 <= size <= len(self):
            raise ValueError(f"size {size} outside 0..{len(self)}")
        return self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """``PATH(index, D[0:size])`` (RFC 6962 §2.1.1)."""
        size = len(self) if size is None else size
        if not 0 <= index < size <= len(self):
            raise ValueError(f"leaf {index} is outside a tree of size {size}")
        return self._path(index, 0, size)

    def _path(self, m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = split_point(n)
        if m < k:
            return [*self._path(m, lo, lo + k), self.subtree(lo + k, hi)]
        return [*self._path(m - k, lo + k, hi), self.subtree(lo, lo + k)]

    def consistency_proof(self, first: int, size: int | None = None) -> list[bytes]:
        """``PROOF(first, D[0:size])`` (RFC 6962 §2.1.2); empty when ``first`` is 0 or ``size``."""
        size = len(self) if size is None else size
        if not 0 <= first <= size <= len(self):
            raise ValueError(f"first size {first} exceeds tree size {size}")
        if first in (0, size):
            return []
        return self._subproof(first, 0, size, True)

    def _subproof(self, m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [self.subtree(lo, hi)]
        k = split_point(n)
        if m <= k:
            return [*self._subproof(m, lo, lo + k, complete), self.subtree(lo + k, hi)]
        return [*self._subproof(m - k, lo + k, hi, False), self.subtree(lo, lo + k)]


def _ok_hashes(items: Sequence[bytes]) -> bool:
    return all(isinstance(h, bytes | bytearray) and len(h) == 32 for h in items)


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """RFC 9162 §2.1.3.2: does ``proof`` lead from leaf hash ``leaf`` at ``index`` to ``root``?"""
    if not _ok_hashes([leaf, root, *proof]) or not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, bytes(leaf)
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, first_root: bytes, size: int, root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``size`` with ``root`` an extension of ``first`` with ``first_root``?"""
    if not _ok_hashes([first_root, root, *proof]) or not 0 <= first <= size:
        return False
    if first == size:
        return not proof and first_root == root
    if first == 0:
        return not proof and first_root == EMPTY_ROOT
    if not proof:
        return False
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return fr == first_root and sr == root and sn == 0
