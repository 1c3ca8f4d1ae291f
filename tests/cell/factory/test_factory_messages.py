"""Signed XML messages and RDF descriptions: forged, replayed, expired and malformed input refused."""

import time

import pytest

from gluecell.cell.factory.crypto import Identity
from gluecell.cell.factory.errors import FactoryError, MessageRefused
from gluecell.cell.factory.messages import Message, Verifier, _to_xml, encode, new_message
from gluecell.cell.factory.rdf import NodeProfile, describe, parse_description

BOMB = (b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>'
        b"<message><action>&lol2;</action></message>")


def msg(sender="cell-1", receiver="manager", **kw):
    return new_message("propose", sender, receiver, {"cost": 42.5, "finish": 1.0, "distance": 3.0},
                       conversation_id="pair-001.0.1", **kw)


def signed_frame(ident, xml):
    from gluecell.cell.factory.crypto import b64e

    return b"GCF1 " + ident.id.encode() + b" " + b64e(ident.sign(xml)).encode() + b"\n" + xml


def test_round_trip(site):
    v = Verifier(site.registry, me="manager")
    m = msg()
    out = v.check(encode(site.identity("cell-1"), m))
    assert (out.action, out.sender, out.content, out.conversation_id) == ("propose", "cell-1", m.content,
                                                                          "pair-001.0.1")
    assert abs(out.sent - m.sent) < 1e-5 and abs(out.expires - m.expires) < 1e-5
    assert v.refused == {}


def test_forged_refused(site):
    v = Verifier(site.registry, me="manager")
    frame = encode(site.identity("cell-1"), msg())
    tampered = frame.replace(b"42.5", b"12.5")  # content changed after signing
    with pytest.raises(MessageRefused, match="forged"):
        v.check(tampered)
    impostor = Identity.generate("cell-1")  # right name, key not registered
    with pytest.raises(MessageRefused, match="forged"):
        v.check(encode(impostor, msg()))
    with pytest.raises(MessageRefused, match="forged"):  # unknown sender
        v.check(encode(Identity.generate("mallory"), msg(sender="mallory")))
    # cell-2 signs a message whose <sender> claims cell-1
    xml = _to_xml(msg(sender="cell-1"))
    with pytest.raises(MessageRefused, match="forged"):
        v.check(signed_frame(site.identity("cell-2"), xml))
    assert v.refused["forged"] == 4


def test_replayed_refused(site):
    v = Verifier(site.registry, me="manager")
    frame = encode(site.identity("cell-1"), msg())
    v.check(frame)
    with pytest.raises(MessageRefused, match="replayed"):
        v.check(frame)
    v.check(encode(site.identity("cell-1"), msg()))  # a new message id is fine
    assert v.refused == {"replayed": 1}


def test_expired_and_future_refused(site):
    v = Verifier(site.registry, me="manager")
    old = Message("propose", "cell-1", "manager", {}, "c1", sent=time.time() - 60, expires=time.time() - 30)
    with pytest.raises(MessageRefused, match="expired"):
        v.check(encode(site.identity("cell-1"), old))
    future = Message("propose", "cell-1", "manager", {}, "c1", sent=time.time() + 120, expires=time.time() + 150)
    with pytest.raises(MessageRefused, match="malformed"):
        v.check(encode(site.identity("cell-1"), future))
    forever = Message("propose", "cell-1", "manager", {}, "c1", sent=time.time(), expires=time.time() + 1e6)
    with pytest.raises(MessageRefused, match="malformed"):
        v.check(encode(site.identity("cell-1"), forever))


@pytest.mark.parametrize("xml", [
    BOMB,
    b"<message><action>propose</action></message>",                 # missing fields
    b"<message><action>propose</action><sender>cell-1",             # truncated
    b"not xml at all",
    b"<message><!-- hi --><action>propose</action></message>",      # comment
])
def test_malformed_refused_after_signature(site, xml):
    v = Verifier(site.registry, me="manager")
    with pytest.raises(MessageRefused, match="malformed"):
        v.check(signed_frame(site.identity("cell-1"), xml))


def test_schema_rules(site):
    v = Verifier(site.registry, me="manager")
    good = _to_xml(msg())
    cases = {
        "unknown action": good.replace(b"<action>propose<", b"<action>steal<"),
        "extra element": good.replace(b"</message>", b"<extra>1</extra></message>"),
        "attribute": good.replace(b"<action>", b'<action x="1">'),
        "NaN content": good.replace(b"42.5", b"NaN"),
        "list content": good.replace(b'language="json">{', b'language="json">[{').replace(b"}</content>",
                                                                                        b"}]</content>"),
    }
    for name, xml in cases.items():
        with pytest.raises(MessageRefused, match="malformed"):
            v.check(signed_frame(site.identity("cell-1"), xml))
        assert name
    with pytest.raises(MessageRefused, match="misdirected"):
        v.check(encode(site.identity("cell-1"), msg(receiver="cell-2")))
    with pytest.raises(MessageRefused, match="malformed"):
        v.check(b"GCF1 cell-1 " + b"A" * 70_000)


def test_signature_is_checked_before_parsing(site, monkeypatch):
    import defusedxml.ElementTree as DET

    calls = []
    monkeypatch.setattr(DET, "fromstring", lambda *a, **k: calls.append(1))
    v = Verifier(site.registry, me="manager")
    with pytest.raises(MessageRefused, match="forged"):
        v.check(encode(site.identity("cell-1"), msg()).replace(b"42.5", b"43.5"))
    assert calls == []


def test_rdf_description_round_trip_and_refusals():
    p = NodeProfile("cell-1", "UR10e glue cell", ("spray-upper", "inspect"), ("PU-water",), 36, 46, 25, (3.0, 1.5))
    assert parse_description(describe(p)) == p
    t0 = time.perf_counter()
    for bad in (BOMB, b'<?xml version="1.0"?><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/>',
                describe(p).encode() + b" <!ENTITY x 'y'>", b"@prefix gcf: <x#> . this is not turtle",
                b"x" * 70_000, describe(p).replace("cell-1", "cell 1").encode()):
        with pytest.raises(FactoryError):
            parse_description(bad)
    assert time.perf_counter() - t0 < 2.0  # refused up front, never expanded
    two = describe(p) + describe(NodeProfile("cell-2", "x", ("inspect",)))
    with pytest.raises(FactoryError, match="exactly one"):
        parse_description(two)
