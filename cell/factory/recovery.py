"""A manager's restart: its ledger rebuilds what it hosted, so nothing in flight is lost."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .product import SmartProduct
from .rdf import NodeProfile

if TYPE_CHECKING:
    from .manager import Manager

__all__ = ["recover"]


def recover(manager: Manager, records: list[dict[str, Any]]) -> list[str]:
    """Rebuild the hosted products from this manager's ledger after a restart and put every open step out
    again (a result that arrives later from an award made before the restart is recorded as late and
    ignored, so each step is still completed once). Returns the products resumed (call before start)."""
    for r in records:
        b = r["body"]
        p = manager.products.get(str(b.get("product")))
        if r["kind"] == "register":  # assumed alive until its last will says otherwise
            manager.joined[r["author"]] = NodeProfile(r["author"], str(b["equipment"]), tuple(b["processes"]))
        elif r["kind"] == "product":
            manager.products[b["product"]] = SmartProduct.from_dict({**b, "id": b["product"]})
        elif p is None:
            continue
        elif r["kind"] == "result" and b.get("step") == p.step:
            p.complete_step(r["author"], b.get("result", {}))
        elif r["kind"] == "alarm" and b.get("step") == p.step:
            p.set_status("stopped")
        elif r["kind"] == "override":
            p.set_status("waiting")
        elif r["kind"] == "award":
            _, _, attempt = str(b["conversation"]).rpartition(".")
            key = (p.id, int(b["step"]))
            manager.attempts[key] = max(manager.attempts.get(key, 0), int(attempt))
    resumed = sorted(k for k, p in manager.products.items() if p.status not in ("done", "stopped"))
    for pid in resumed:
        manager.products[pid].note("recovered")
        manager.call(lambda pid=pid: manager._auction(pid))
    return resumed
