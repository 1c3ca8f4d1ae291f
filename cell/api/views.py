"""Read models of the cell for the API and the console: work items as smart products, geometry, KPIs."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gluecell.cell.api.problems import Problem

__all__ = ["item_page", "item_detail", "geometry", "picture_path", "kpis", "inspection_page", "WHERE", "MAX_POINTS"]

#: Where a work item is, by state, and what happens next.
WHERE: dict[str, tuple[str, str]] = {
    "ordered": ("upstream (not yet at the infeed)", "arrive at the infeed"),
    "arrived": ("infeed", "scan, predict, plan"), "planned": ("cell", "spray"), "spraying": ("spray booth", "inspect"),
    "sprayed": ("spray booth", "inspect and route"), "passed": ("next station", "press sole onto upper"),
    "rework": ("rework bin", "the operator decides (force pass/fail, re-spray, skip)"), "skipped": ("removed", "none"),
}  # fmt: skip
#: Scan points sent per part to the 3D view.
MAX_POINTS = 4000


def _unknown(item_id: str) -> Problem:
    return Problem(404, "not-found", "Unknown work item", f"no work item {item_id!r}")


def item_page(store: Any, after: int, limit: int, state: str | None) -> tuple[list[dict[str, Any]], int | None]:
    """Work items after rowid ``after`` (arrival order of ordering), optionally in one state."""
    sql, args = "SELECT rowid AS rid, * FROM work_items WHERE rowid > ?", [after]
    if state:
        sql, args = sql + " AND state = ?", [*args, state]
    rows = store.db.query(sql + " ORDER BY rowid LIMIT ?", (*args, limit + 1))
    items = [{k: r[k] for k in r.keys() if k != "rid"} for r in rows[:limit]]
    return items, (int(rows[limit - 1]["rid"]) if len(rows) > limit else None)


def item_detail(store: Any, item_id: str) -> dict[str, Any]:
    """The smart product: the item, what was done to it (history, plans, sprays, inspections), where, what next."""
    rows = store.db.query("SELECT * FROM work_items WHERE id = ?", (item_id,))
    if not rows:
        raise _unknown(item_id)
    item = dict(rows[0])
    where, nxt = WHERE.get(item["state"], ("unknown", "unknown"))
    plans = store.db.query("SELECT id, source, verdict, created FROM plans WHERE item_id = ? ORDER BY id", (item_id,))
    overrides = store.db.query("SELECT id, action, who, why, created, applied, result FROM overrides WHERE item_id = ?"
                               " ORDER BY id", (item_id,))  # fmt: skip
    return {"item": item, "where": where, "next": nxt, "history": store.items.history(item_id),
            "plans": [dict(p) for p in plans], "sprays": store.sprays.for_item(item_id),
            "inspections": store.inspections.for_item(item_id), "overrides": [dict(o) for o in overrides]}  # fmt: skip


def _sample(points: np.ndarray, n: int) -> list[list[float]]:
    if len(points) > n:
        points = points[np.linspace(0, len(points) - 1, n).astype(int)]
    return np.round(points.astype(float), 5).tolist()


def _scans(store: Any, item_id: str, roots: tuple[Path, ...]) -> dict[str, list[list[float]]]:
    from gluecell.core.ply import read_ply

    out: dict[str, list[list[float]]] = {}
    pics = [r[0] for r in store.db.query("SELECT picture FROM work_items WHERE id = ? UNION ALL SELECT picture FROM"
                                         " inspections WHERE item_id = ?", (item_id, item_id)) if r[0]]  # fmt: skip
    folders = [Path(p).parent for p in pics] + list(roots)
    for part in ("upper", "sole"):
        for folder in folders:
            f = folder / f"{item_id}_{part}.ply"
            if f.is_file() and _inside(f, roots):
                out[part] = _sample(np.asarray(read_ply(f).points, dtype=float), MAX_POINTS)
                break
    return out


def geometry(store: Any, item_id: str, roots: tuple[Path, ...]) -> dict[str, Any]:
    """The item's latest plan for the 3D view: bite line (+ sigma), spray paths with gun flags, scans. Metres."""
    plan = store.plans.latest(item_id)
    if plan is None:
        raise Problem(404, "not-found", "No plan", f"work item {item_id!r} has no plan yet")
    data = plan["data"]
    paths = [{"part": p.get("part"), "xyz": _sample(np.asarray([w["xyz"] for w in p.get("waypoints", [])]), 3000),
              "spray": [bool(w.get("spray")) for w in p.get("waypoints", [])][:: max(1, len(p.get("waypoints", []))
                                                                                   // 3000 + 1)]}
             for p in data.get("paths", ()) if p.get("waypoints")]  # fmt: skip
    sigma = data.get("bite_line_sigma") or (data.get("metrics") or {}).get("bite_line_sigma")
    return {"item_id": item_id, "units": "m", "frame": data.get("frame", "base_link"), "plan_source": plan["source"],
            "bite_line": data.get("bite_line", []), "bite_line_sigma": sigma, "paths": paths,
            "scans": _scans(store, item_id, roots)}  # fmt: skip


def _inside(path: Path, roots: tuple[Path, ...]) -> bool:
    rp = path.resolve()
    return any(rp.is_relative_to(r.resolve()) for r in roots)


def picture_path(store: Any, item_id: str, roots: tuple[Path, ...]) -> Path:
    """The latest inspection picture of the item (or the item's picture): a PNG inside ``roots``."""
    if not store.db.query("SELECT 1 FROM work_items WHERE id = ?", (item_id,)):
        raise _unknown(item_id)
    rows = store.db.query("SELECT picture FROM inspections WHERE item_id = ? AND picture IS NOT NULL ORDER BY id DESC"
                          " LIMIT 1", (item_id,)) or store.db.query("SELECT picture FROM work_items WHERE id = ?",
                                                                    (item_id,))  # fmt: skip
    pic = rows[0][0] if rows and rows[0][0] else None
    if pic is None or Path(pic).suffix.lower() != ".png" or not Path(pic).is_file() or not _inside(Path(pic), roots):
        raise Problem(404, "not-found", "No picture", f"work item {item_id!r} has no inspection picture")
    return Path(pic)


def inspection_page(store: Any, after: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    """Inspections after id ``after``, oldest first."""
    rows = store.db.query("SELECT * FROM inspections WHERE id > ? ORDER BY id LIMIT ?", (after, limit + 1))
    items = []
    for r in rows[:limit]:
        d = dict(r)
        d["has_picture"] = bool(d.pop("picture"))
        items.append(d)
    return items, (int(rows[limit - 1]["id"]) if len(rows) > limit else None)


def kpis(store: Any, window_s: float = 3600.0) -> dict[str, Any]:
    """Throughput, first-pass yield, cycle times, time per PackML state and stop/rework reasons, with series."""
    rows = store.db.query(
        "SELECT w.id, w.state, w.cause, MIN(CASE WHEN h.state = 'arrived' THEN h.ts END) AS t0,"
        " MAX(CASE WHEN h.state IN ('passed','rework','skipped') THEN h.ts END) AS t1, SUM(h.state = 'rework') AS nr"
        " FROM work_items w JOIN item_history h ON h.item_id = w.id WHERE w.state IN ('passed','rework','skipped')"
        " GROUP BY w.id ORDER BY t1")  # fmt: skip
    done = [r for r in rows if r["t1"] is not None]
    now = time.time()
    recent = [r for r in done if r["t1"] > now - window_s]
    span = min(window_s, now - min((r["t0"] or r["t1"]) for r in recent)) if recent else window_s
    cycles = [float(r["t1"] - r["t0"]) for r in done if r["t0"] is not None][-500:]
    fp = sum(r["state"] == "passed" and not r["nr"] for r in done)
    reasons: dict[str, int] = {}
    for r in done:
        if r["nr"]:
            reasons[r["cause"] or "rework"] = reasons.get(r["cause"] or "rework", 0) + 1
    tags = store.packtags.load()
    stop = tags.get("StopReason") or {}
    if stop.get("ID"):
        reasons[f"stop: {stop.get('Value', '')}"] = reasons.get(f"stop: {stop.get('Value', '')}", 0) + 1
    return {"pairs_done": len(done), "throughput_per_h": len(recent) * 3600.0 / max(span, 1.0),
            "first_pass_yield": fp / len(done) if done else None,
            "cycle_time_mean_s": float(np.mean(cycles)) if cycles else None,
            "cycle_time_p95_s": float(np.percentile(cycles, 95)) if cycles else None,
            "state_times_s": tags.get("StateCumulativeTime", {}), "reasons": reasons,
            "series": {"t": [float(r["t1"]) for r in done][-500:], "cycle_s": cycles,
                       "first_pass": [int(r["state"] == "passed" and not r["nr"]) for r in done][-500:]}}  # fmt: skip
