"""A node's self-description in RDF (Turtle, ``rdflib``): equipment, processes, glues, sizes, takt, place, state.

Only Turtle is accepted (never RDF/XML), at most 64 KiB, and any ``<!`` (DOCTYPE, entity declarations) is
refused before rdflib sees the text: an entity-expansion RDF/XML document stalls rdflib for seconds.
Vocabulary: ``gcf:`` (https://gluecell.example/ns/factory#), with ``gcf:CPSNode`` as the node's class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .crypto import check_id
from .errors import FactoryError

__all__ = ["GCF", "MAX_RDF", "NodeProfile", "describe", "parse_description"]

GCF = "https://gluecell.example/ns/factory#"
MAX_RDF = 64 * 1024
STATES = ("idle", "busy", "down", "maintenance")


@dataclass(frozen=True)
class NodeProfile:
    """What a CPS node can do. Sizes are EU (Paris point) shoe sizes; location in metres on the floor plan."""

    id: str
    equipment: str
    processes: tuple[str, ...]
    glues: tuple[str, ...] = ()
    size_min: float = 35.0
    size_max: float = 47.0
    takt_s: float = 30.0
    location: tuple[float, float] = (0.0, 0.0)
    state: str = "idle"

    def __post_init__(self) -> None:
        check_id(self.id, "node id")
        object.__setattr__(self, "processes", tuple(sorted(self.processes)))
        object.__setattr__(self, "glues", tuple(sorted(self.glues)))
        for p in self.processes:
            check_id(p, "process")
        nums = [self.size_min, self.size_max, self.takt_s, *self.location]
        if not all(isinstance(v, int | float) and math.isfinite(v) for v in nums):
            raise FactoryError(f"{self.id}: sizes, takt and location must be finite numbers")
        if not 0 < self.size_min <= self.size_max <= 60 or not 0 < self.takt_s <= 3600:
            raise FactoryError(f"{self.id}: size range or takt time out of bounds")
        if self.state not in STATES or not self.equipment or len(self.equipment) > 128:
            raise FactoryError(f"{self.id}: bad state or equipment")


def describe(p: NodeProfile) -> str:
    """The profile as a Turtle document."""
    from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef

    g, ns = Graph(), Namespace(GCF)
    g.bind("gcf", ns)
    node = URIRef(f"urn:gluecell:node:{p.id}")
    g.add((node, RDF.type, ns.CPSNode))
    g.add((node, ns.id, Literal(p.id)))
    g.add((node, ns.equipment, Literal(p.equipment)))
    for proc in p.processes:
        g.add((node, ns.process, Literal(proc)))
    for glue in p.glues:
        g.add((node, ns.glue, Literal(glue)))
    for name, value in (("sizeMin", p.size_min), ("sizeMax", p.size_max), ("taktTime", p.takt_s),
                        ("locationX", p.location[0]), ("locationY", p.location[1])):
        g.add((node, ns[name], Literal(float(value), datatype=XSD.double)))
    g.add((node, ns.state, Literal(p.state)))
    return g.serialize(format="turtle")


def _one(g: Any, node: Any, prop: Any, what: str) -> Any:
    vals = list(g.objects(node, prop))
    if len(vals) != 1:
        raise FactoryError(f"description must have exactly one {what}, has {len(vals)}")
    return vals[0].toPython()


def parse_description(text: str | bytes) -> NodeProfile:
    """Parse and validate a Turtle description (refusing DOCTYPEs, entities, RDF/XML and oversize input)."""
    from rdflib import RDF, Graph, Namespace

    raw = text.encode() if isinstance(text, str) else bytes(text)
    if len(raw) > MAX_RDF:
        raise FactoryError(f"description of {len(raw)} bytes is over the {MAX_RDF} byte limit")
    if b"<!" in raw or b"<?xml" in raw or b"<rdf:RDF" in raw:
        raise FactoryError("description refused: DOCTYPE/entity/XML found; only Turtle is accepted")
    g, ns = Graph(), Namespace(GCF)
    try:
        g.parse(data=raw.decode("utf-8"), format="turtle")
    except Exception as exc:  # rdflib raises many types for bad Turtle
        raise FactoryError(f"description is not valid Turtle: {type(exc).__name__}: {str(exc)[:200]}") from None
    nodes = list(g.subjects(RDF.type, ns.CPSNode))
    if len(nodes) != 1:
        raise FactoryError(f"description must describe exactly one gcf:CPSNode, found {len(nodes)}")
    n = nodes[0]
    try:
        return NodeProfile(
            str(_one(g, n, ns.id, "gcf:id")), str(_one(g, n, ns.equipment, "gcf:equipment")),
            tuple(str(o) for o in g.objects(n, ns.process)), tuple(str(o) for o in g.objects(n, ns.glue)),
            float(_one(g, n, ns.sizeMin, "gcf:sizeMin")), float(_one(g, n, ns.sizeMax, "gcf:sizeMax")),
            float(_one(g, n, ns.taktTime, "gcf:taktTime")),
            (float(_one(g, n, ns.locationX, "gcf:locationX")), float(_one(g, n, ns.locationY, "gcf:locationY"))),
            str(_one(g, n, ns.state, "gcf:state")))
    except (TypeError, ValueError) as exc:
        raise FactoryError(f"description has a value of the wrong type: {exc}") from exc
