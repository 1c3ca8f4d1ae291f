"""Quality bench: the promoted QA model and the classical measurement on held-out inspection data.

Two inspection datasets are generated from held-out seeds (``ctx.seed + 16`` and ``ctx.seed + 17``; never used
for training): one with the training appearance and one with shifted appearance (new materials and colours,
other lighting, a stronger brightened textile). On every view: recall per defect type and false-reject rate at
the model's operating point, network vs classical (``qa_<metric>_<defect>`` and ``qa_classical_...``), AUROC,
overspray distance error (mm), and the drop on the shifted split. Metrics a split cannot define (a defect type
without a single view) are left out. Latency: the network alone per view and the
whole ``quality.inspect`` per part (all its views), p50/p95, on this machine's threads (2 cores).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["bench", "rejudge_run", "run_features"]

#: Pairs per dataset (quick / full); each pair gives 4 views.
N_QUICK, N_FULL = 4, 25


def _latency(model: Any, root: Path) -> dict[str, float]:
    import torch

    from gluecell.datasets.inspection.format import open_inspection
    from gluecell.quality import inspect
    from gluecell.quality.geometry import view_geometry
    from gluecell.quality.net import features

    torch.set_num_threads(2)
    ds = open_inspection(root)
    pairs: dict[str, list[str]] = {}
    for vid in ds.ids():
        pairs.setdefault(vid.partition("/")[0], []).append(vid)
    net_ms, whole_ms = [], []
    for vids in pairs.values():
        views, plan = [ds.view(v) for v in vids], ds.plan(vids[0])
        x = torch.from_numpy(features(views[0], view_geometry(views[0], plan))[None])
        with torch.no_grad():
            model.net(x)
            t0 = time.perf_counter()
            model.net(x)
            net_ms.append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        inspect(views, plan, model=model)
        whole_ms.append((time.perf_counter() - t0) * 1e3)
    return {"qa_net_latency_p50_ms": float(np.percentile(net_ms, 50)),
            "qa_net_latency_p95_ms": float(np.percentile(net_ms, 95)),
            "qa_inspect_latency_p50_ms": float(np.percentile(whole_ms, 50)),
            "qa_inspect_latency_p95_ms": float(np.percentile(whole_ms, 95)),
            "qa_views_per_part": float(np.mean([len(v) for v in pairs.values()]))}  # fmt: skip


def _flat(prefix: str, res: dict[str, Any]) -> dict[str, float]:
    out = {f"{prefix}false_reject_rate": res["false_reject_rate"], f"{prefix}to_human_rate": res["to_human_rate"],
           f"{prefix}recall_any": res["recall_any"]}  # fmt: skip
    for t, r in res["recall"].items():
        out[f"{prefix}recall_{t}"] = r
        out[f"{prefix}auroc_{t}"] = res["auroc"][t]
        out[f"{prefix}support_{t}"] = float(res["support"][t])
    return out


def bench(ctx: Any) -> dict[str, float]:
    """Generate held-out inspection data, evaluate the champion and the classical measurement, time them."""
    from gluecell.datasets.inspection.generate import InspectionOptions, generate_inspection
    from gluecell.quality.evaluate import evaluate
    from gluecell.quality.inspect import resolve_model

    n = N_QUICK if ctx.quick else N_FULL
    model = resolve_model("champion")
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gluecell-qa-bench-") as tmp:
        for name, shifted, seed in (("", False, ctx.seed + 16), ("shifted_", True, ctx.seed + 17)):
            root = Path(tmp) / f"qa{name or '_'}"
            generate_inspection(root, InspectionOptions(n=n, seed=int(seed), shifted=shifted, workers=2))
            res = evaluate(model, root, split="all")
            out.update(_flat(f"qa_{name}", res))
            out.update(_flat(f"qa_{name}classical_", res["classical"]))
            out.update(_flat(f"qa_{name}part_", res["parts"]))
            out[f"qa_{name}overspray_mae_mm"] = res["overspray_mae_mm"]
            out[f"qa_{name}glue_iou"] = res["glue_iou"]
            out[f"qa_{name}views"] = float(res["n_views"])
            if not shifted:
                out.update(_latency(model, root))
    for t in ("gap", "above", "thin", "blob"):
        a, b = out.get(f"qa_recall_{t}", np.nan), out.get(f"qa_shifted_recall_{t}", np.nan)
        out[f"qa_shift_drop_recall_{t}"] = float(a - b)
    # A metric without support (no view of that defect type) is undefined: left out (bench JSON is strict).
    return {k: v for k, v in out.items() if np.isfinite(v)}


def rejudge_run(run: str | Path, model: Any = "champion", registry: str | None = None) -> dict[str, Any]:
    """Inspect a finished demo run's views again with ``model`` and compare with the run's truth labels.

    A demo (``gluecell demo --out RUN``) keeps what the station saw (``RUN/inspection/<id>/view*.npz``), the plan
    it inspected against (``RUN/pairs/<id>_plan.json``) and, for evaluation only, the simulated cell's truth
    labels (``RUN/inspection_truth/<id>.json``). Per pair: the verdict, and caught / missed / false reject /
    correct pass as the demo's summary counts them (fail or uncertain stops the pair).
    """
    import json

    from gluecell.core.plan import plan_from_dict
    from gluecell.datasets.inspection.format import load_view
    from gluecell.quality import inspect

    run = Path(run)
    rows, counts = [], dict.fromkeys(("caught", "missed", "false reject", "correct pass"), 0)
    for folder in sorted(p for p in (run / "inspection").iterdir() if p.is_dir() and not p.name.startswith(".")):
        truth_f, plan_f = run / "inspection_truth" / f"{folder.name}.json", run / "pairs" / f"{folder.name}_plan.json"
        if not truth_f.is_file() or not plan_f.is_file():
            continue
        files = sorted(folder.glob("view*.npz"), key=lambda f: int(f.stem[4:]) if f.stem[4:].isdigit() else 0)
        ins = inspect([load_view(f) for f in files], plan_from_dict(json.loads(plan_f.read_text())),
                      item_id=folder.name, model=model, registry=registry)  # fmt: skip
        truth = json.loads(truth_f.read_text())
        bad, passed = truth["verdict"] == "fail", ins.verdict == "pass"
        versus = ("missed" if passed else "caught") if bad else ("correct pass" if passed else "false reject")
        counts[versus] += 1
        rows.append({"id": folder.name, "verdict": ins.verdict, "defects": sorted({d.kind for d in ins.defects}),
                     "truth": truth["verdict"], "truth_defects": truth["defects"], "versus": versus,
                     "scores": ins.diagnostics["scores"]})  # fmt: skip
    n = len(rows)
    return {"run": str(run), "pairs": n, **counts,
            "first_pass_yield": sum(r["verdict"] == "pass" for r in rows) / n if n else float("nan"),
            "rows": rows}  # fmt: skip


def run_features(run: str | Path, model: Any) -> dict[str, Any]:
    """Head features, network scores, truth labels and view ids ("run:pair/view") of a finished demo run's views
    (for choosing a head's thresholds on demo-rendered validation pairs: ``gluecell qa head --val-run``)."""
    import json

    import torch

    from gluecell.core.plan import plan_from_dict
    from gluecell.core.types import DEFECT_TYPES
    from gluecell.datasets.inspection.format import load_view
    from gluecell.quality.geometry import view_geometry
    from gluecell.quality.head import view_features
    from gluecell.quality.measure import measure_view
    from gluecell.quality.net import features, scores_from_probs

    run = Path(run)
    feats, net, labels, ids = [], [], [], []
    for folder in sorted(p for p in (run / "inspection").iterdir() if p.is_dir() and not p.name.startswith(".")):
        truth_f, plan_f = run / "inspection_truth" / f"{folder.name}.json", run / "pairs" / f"{folder.name}_plan.json"
        if not truth_f.is_file() or not plan_f.is_file():
            continue
        truth = json.loads(truth_f.read_text())
        plan = plan_from_dict(json.loads(plan_f.read_text()))
        files = sorted(folder.glob("view*.npz"), key=lambda f: int(f.stem[4:]) if f.stem[4:].isdigit() else 0)
        for k, f in enumerate(files):
            v = load_view(f)
            g = view_geometry(v, plan)
            x = torch.from_numpy(features(v, g)[None])
            with torch.no_grad():
                p = torch.sigmoid(model.net(x))
            cls = measure_view(v, g)
            feats.append(view_features(x[0].numpy(), p[0].numpy(), np.array([cls.scores[t] for t in DEFECT_TYPES])))
            net.append(scores_from_probs(p, x[:, 4:5])[0].numpy())
            labels.append([t in truth["views"][k]["defects"] for t in DEFECT_TYPES])
            ids.append(f"{run.name}:{folder.name}/view{k}")
    return {"feats": np.asarray(feats), "net": np.asarray(net), "labels": np.asarray(labels, dtype=bool), "ids": ids}
