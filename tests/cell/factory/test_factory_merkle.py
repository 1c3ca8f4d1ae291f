"""RFC 6962 Merkle hashing against the Certificate Transparency vectors and the RFC's 7-leaf worked examples."""

import hashlib

import pytest

from gluecell.cell.factory.merkle import (
    EMPTY_ROOT,
    MerkleTree,
    leaf_hash,
    node_hash,
    split_point,
    verify_consistency,
    verify_inclusion,
)

# The CT reference test data (certificate-transparency merkle_tree_test), hex leaf inputs and MTH(D[n]).
LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")]
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
INCLUSION = [  # (leaf index, tree size, audit path)
    (0, 1, []),
    (0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]
CONSISTENCY = [  # (first size, second size, proof)
    (1, 1, []),
    (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
    (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
]


def mth(d):
    """RFC 6962 §2.1 written out literally, independent of MerkleTree."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = 1
    while 2 * k < len(d):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(d[:k]) + mth(d[k:])).digest()


def tree(n):
    t = MerkleTree()
    for d in LEAVES[:n]:
        t.append(d)
    return t


def test_prefixes_and_empty_root():
    assert EMPTY_ROOT.hex() == ROOTS[0]
    assert leaf_hash(b"abc") == hashlib.sha256(b"\x00abc").digest()
    a, b = leaf_hash(b"a"), leaf_hash(b"b")
    assert node_hash(a, b) == hashlib.sha256(b"\x01" + a + b).digest()
    assert leaf_hash(a + b) != node_hash(a, b)  # domain separation
    assert [split_point(n) for n in (2, 3, 4, 5, 8, 9)] == [1, 2, 2, 4, 4, 8]


@pytest.mark.parametrize("n", range(9))
def test_roots_match_ct_vectors(n):
    assert tree(n).root().hex() == ROOTS[n]
    assert tree(8).root(n).hex() == ROOTS[n]
    assert mth(LEAVES[:n]).hex() == ROOTS[n]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION)
def test_inclusion_vectors(index, size, path):
    t = tree(size)
    proof = t.inclusion_proof(index)
    assert [p.hex() for p in proof] == path
    assert verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof, t.root())
    for i in range(len(proof)):  # one flipped bit anywhere fails
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 1]) + bad[i][1:]
        assert not verify_inclusion(leaf_hash(LEAVES[index]), index, size, bad, t.root())
    if size > 1:
        assert not verify_inclusion(leaf_hash(LEAVES[index]), (index + 1) % size, size, proof, t.root())
        assert not verify_inclusion(leaf_hash(LEAVES[index]), index, size, proof[:-1], t.root())


@pytest.mark.parametrize(("first", "size", "path"), CONSISTENCY)
def test_consistency_vectors(first, size, path):
    t = tree(size)
    proof = t.consistency_proof(first)
    assert [p.hex() for p in proof] == path
    old = bytes.fromhex(ROOTS[first])
    assert verify_consistency(first, old, size, t.root(), proof)
    if proof:
        assert not verify_consistency(first, old, size, t.root(), proof[:-1])
        assert not verify_consistency(first, t.root(), size, t.root(), proof) or first == size


def test_rfc6962_seven_leaf_worked_examples():
    """RFC 6962 §2.1.3: audit paths for d0, d3, d4, d6 and consistency proofs of hash0/1/2 against hash."""
    d = LEAVES[:7]
    a, b, c, dd, e, f = (mth([x]) for x in d[:6])
    j = mth([d[6]])
    g, h, i = mth(d[0:2]), mth(d[2:4]), mth(d[4:6])
    k, l = mth(d[0:4]), mth(d[4:7])
    t = tree(7)
    assert t.root() == node_hash(k, l) == mth(d)
    assert t.inclusion_proof(0) == [b, h, l]
    assert t.inclusion_proof(3) == [c, g, l]
    assert t.inclusion_proof(4) == [f, j, k]
    assert t.inclusion_proof(6) == [i, k]
    assert t.consistency_proof(3) == [c, dd, g, l]
    assert t.consistency_proof(4) == [l]
    assert t.consistency_proof(6) == [i, j, k]
    for m in (3, 4, 6):
        assert verify_consistency(m, mth(d[:m]), 7, t.root(), t.consistency_proof(m))
    assert a == leaf_hash(d[0]) and e == leaf_hash(d[4])


def test_every_proof_up_to_33_leaves_round_trips():
    t = MerkleTree()
    for n in range(1, 34):
        t.append(f"leaf-{n}".encode())
        for m in range(n):
            assert verify_inclusion(t.levels[0][m], m, n, t.inclusion_proof(m, n), t.root(n))
            assert verify_consistency(m, t.root(m), n, t.root(n), t.consistency_proof(m, n))
            if 0 < m:
                assert not verify_consistency(m, t.root(m - 1), n, t.root(n), t.consistency_proof(m, n))


def test_bad_arguments():
    t = tree(8)
    with pytest.raises(ValueError):
        t.inclusion_proof(8)
    with pytest.raises(ValueError):
        t.consistency_proof(9)
    assert not verify_inclusion(b"short", 0, 8, [], t.root())
    assert not verify_consistency(8, t.root(), 6, t.root(6), [])
    assert verify_consistency(0, EMPTY_ROOT, 8, t.root(), [])
    assert not verify_consistency(8, t.root(6), 8, t.root(), [])
