"""The signed ledger: verification from genesis, and tampering, reordering, replay, forks and torn writes
detected with the first bad record named (also through ``gluecell factory ledger verify``)."""

import itertools
import json
import subprocess
import sys

import pytest

from gluecell.cell.factory.errors import AuthError, LedgerError
from gluecell.cell.factory.ledger import Ledger, make_record
from gluecell.cell.factory.ledgercheck import check_fork, compare, verify_file
from gluecell.cell.factory.merkle import leaf_hash, verify_inclusion
from gluecell.cell.factory.registry import Registry

N_RECORDS = 12


@pytest.fixture
def ledger(site, admin, tmp_path):
    led = Ledger.create(tmp_path / "l.jsonl", site.identity("manager"), site.registry.signed(admin), sync=False)
    for i in range(1, N_RECORDS):
        author = site.identity(f"cell-{1 + i % 5}")
        led.append(make_record(author, "result", {"product": f"p{i}", "step": 0, "result": {"ok": True}}))
    return led


def lines(path):
    return path.read_bytes().splitlines()


def write(path, ls):
    path.write_bytes(b"".join(x + b"\n" for x in ls))


def rec_line(ls, seq):
    """Index of the line holding record ``seq``."""
    return next(i for i, x in enumerate(ls) if json.loads(x).get("t") == "rec" and json.loads(x)["seq"] == seq)


def test_good_ledger_verifies_and_proves_inclusion(ledger):
    st = verify_file(ledger.path, keep=True)
    assert len(st.tree) == N_RECORDS and len(st.heads) == N_RECORDS
    assert st.kinds == {"genesis": 1, "result": N_RECORDS - 1}
    assert st.tree.root().hex() == ledger.head()["root"]
    ts = [h["ts"] for h in st.heads]
    assert all(b > a for a, b in itertools.pairwise(ts))
    raw = lines(ledger.path)[rec_line(lines(ledger.path), 7)]
    obj = json.loads(raw)
    from gluecell.cell.factory.ledger import leaf_of

    leaf = leaf_hash(leaf_of(7, obj["rec"], obj["sig"]))
    assert verify_inclusion(leaf, 7, N_RECORDS, st.tree.inclusion_proof(7), st.tree.root())


def test_tampered_body_is_named(ledger):
    ls = lines(ledger.path)
    i = rec_line(ls, 5)
    ls[i] = ls[i].replace(b'"ok":true', b'"ok":false')
    write(ledger.path, ls)
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert e.value.seq == 5 and "signature" in e.value.message


def test_reordered_records_are_named(ledger):
    ls = lines(ledger.path)
    a, b = rec_line(ls, 4), rec_line(ls, 6)
    ls[a], ls[b] = ls[b], ls[a]
    write(ledger.path, ls)
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert e.value.seq == 4


def test_reordered_and_renumbered_records_fail_the_signed_head(ledger):
    ls = lines(ledger.path)
    a, b = rec_line(ls, 4), rec_line(ls, 6)
    ra, rb = json.loads(ls[a]), json.loads(ls[b])
    ra["seq"], rb["seq"] = 6, 4
    ls[a] = json.dumps(rb, sort_keys=True, separators=(",", ":")).encode()
    ls[b] = json.dumps(ra, sort_keys=True, separators=(",", ":")).encode()
    write(ledger.path, ls)
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert e.value.seq == 4 and "signed head" in e.value.message


def test_replayed_record_is_named(ledger, site):
    first = json.loads(lines(ledger.path)[rec_line(lines(ledger.path), 3)])
    replay = {"rec": first["rec"], "sig": first["sig"]}
    with pytest.raises(LedgerError, match="replayed"):
        ledger.append(replay)  # the writer refuses it ...
    ls = lines(ledger.path)  # ... and a replay spliced into the file is found
    obj = dict(first, seq=N_RECORDS)
    ls.append(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())
    write(ledger.path, ls)
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert e.value.seq == N_RECORDS and "replayed" in e.value.message


def test_unknown_author_and_forged_signature_refused(ledger, site):
    from gluecell.cell.factory.crypto import Identity

    with pytest.raises(LedgerError, match="not a member"):
        ledger.append(make_record(Identity.generate("intruder"), "result", {"x": 1}))
    impostor = Identity.generate("cell-1")  # right name, wrong key
    with pytest.raises(LedgerError, match="signature"):
        ledger.append(make_record(impostor, "result", {"x": 1}))


def test_deleted_tail_head_and_torn_line(ledger):
    ls = lines(ledger.path)
    write(ledger.path, ls[:-1])  # last record without its signed head
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert e.value.seq == N_RECORDS - 1
    ledger.path.write_bytes(b"".join(x + b"\n" for x in ls) + b'{"t":"rec","se')
    with pytest.raises(LedgerError, match="torn"):
        verify_file(ledger.path)
    reopened = Ledger.open(ledger.path, ledger.writer, sync=False)  # the torn write is dropped on reopen
    assert len(reopened) == N_RECORDS
    verify_file(ledger.path)


def test_head_timestamps_must_increase(ledger):
    ls = lines(ledger.path)
    i = rec_line(ls, 8) + 1
    j = rec_line(ls, 9) + 1
    hi, hj = json.loads(ls[i]), json.loads(ls[j])
    ls[j] = ls[i]  # an older signed head replayed in place of a newer one
    write(ledger.path, ls)
    with pytest.raises(LedgerError) as e:
        verify_file(ledger.path)
    assert "increase" in e.value.message or "size" in e.value.message
    assert hi["size"] + 1 == hj["size"]


def test_fork_detected_from_two_signed_heads(site, admin, tmp_path):
    a = Ledger.create(tmp_path / "a.jsonl", site.identity("manager"), site.registry.signed(admin), sync=False)
    cell = site.identity("cell-1")
    a.add(cell, "result", {"product": "p1"})
    (tmp_path / "b.jsonl").write_bytes(a.path.read_bytes())  # a replica, then the two diverge
    b = Ledger.open(tmp_path / "b.jsonl", site.identity("manager"), sync=False)
    a.add(cell, "result", {"product": "p2", "to": "a"})
    b.add(cell, "result", {"product": "p2", "to": "b"})
    b.add(cell, "result", {"product": "p3"})
    sa, sb = verify_file(a.path), verify_file(b.path)  # each copy is valid on its own
    assert sa.tree.root(2) == sb.tree.root(2) and sa.tree.root(3) != sb.tree.root(3)
    ha, hb = sa.heads[-1], sb.heads[2]
    assert ha["size"] == hb["size"] == 3
    with pytest.raises(LedgerError, match="fork: two signed heads of size 3"):
        check_fork(ha, hb)
    with pytest.raises(LedgerError, match="consistency proof fails"):
        check_fork(ha, sb.heads[-1], sb.tree.consistency_proof(3, 4))
    with pytest.raises(LedgerError, match="fork"):
        compare(sa, sb)
    check_fork(sb.heads[1], sb.heads[-1], sb.tree.consistency_proof(2, 4))  # an honest extension passes
    check_fork(sa.heads[1], sb.heads[-1], sb.tree.consistency_proof(2, 4))  # the common prefix is consistent
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "factory", "ledger", "verify", str(a.path), "--against",
           str(b.path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "fork" in out.stderr


def test_genesis_registry_must_be_the_admins(site, admin, tmp_path):
    doc = site.registry.signed(admin)
    doc["members"][0]["role"] = "cell" if doc["members"][0]["role"] != "cell" else "manager"
    with pytest.raises(AuthError, match="does not verify"):
        Registry.from_signed(doc)
    led = Ledger.create(tmp_path / "p.jsonl", site.identity("manager"), site.registry.signed(admin), sync=False)
    other = Registry.from_signed(site.registry.signed(admin)).admin_public
    with pytest.raises(LedgerError, match="another administrator"):
        verify_file(led.path, pin_admin=other[:-4] + "AAA=")


def test_cli_verify_names_first_bad_record(ledger):
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "factory", "ledger", "verify", str(ledger.path)]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and f"{N_RECORDS} records" in ok.stdout
    ls = lines(ledger.path)
    i = rec_line(ls, 9)
    ls[i] = ls[i].replace(b'"p9"', b'"pX"')
    write(ledger.path, ls)
    bad = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "record 9" in bad.stderr
