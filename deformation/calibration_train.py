"""Training of the deformation step's learnt parts on a dataset's training split (as
:mod:`gluecell.pathplan.correction_train` is for the path correction): the depth calibration and its sigma model
(:func:`calibrate_on_dataset`, behind ``gluecell deform calibrate``) and the ring-solver surrogate
(:func:`train_on_dataset`, behind ``gluecell deform train``).

Training code reads a dataset through its loader (:func:`gluecell.datasets.format.open_dataset`): its scans go
through perception as a cell's would, its truth is the training label. Nothing here imports the world; the
bench and the CLI call these with the dataset they opened. The sigma model is fitted on the per-point half
(predicted point to true line) of the project's one bite-line error (:func:`gluecell.core.geometry.bite_line_error`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

__all__ = ["calibrate_on_dataset", "train_on_dataset"]


def calibrate_on_dataset(
    dataset: Any, ids: list[str], reference_for: Any = None, progress: bool = False, sole_reference_for: Any = None
) -> tuple[Any, dict[str, float]]:
    """Learn the depth calibration on ``ids`` (training pairs: scans through perception, truth as labels).

    Args:
        dataset: an opened :class:`gluecell.datasets.format.Dataset`.
        ids: sample ids to learn from (a training split).
        reference_for: optional ``f(workitem) -> (points, normals)`` of the style's nominal upper.
        sole_reference_for: optional ``f(workitem) -> (points, normals)`` of the style's nominal sole.

    Returns:
        (DepthCalibration, metrics) with metrics ``pairs_used``, ``pairs_refused``.
    """
    import numpy as np

    from gluecell.core.errors import GlueCellError
    from gluecell.core.geometry import bite_line_error
    from gluecell.perception.scan import scan_part_frames

    from .calibration import depth_error, fit_calibration, fit_sigma_model
    from .predict import predict_attach

    samples: list[tuple[str, float]] = []
    styles: list[str] = []
    kept: list[tuple[Any, Any, Any]] = []
    refused = 0
    for sid in _progress(ids, progress, "calibrating"):
        inp = dataset.inputs(sid)
        truth = dataset.truth(sid)
        material = str(truth["params"]["material"])
        try:
            upper = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
            sole = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
            ref = reference_for(inp["workitem"]) if reference_for is not None else None
            sref = sole_reference_for(inp["workitem"]) if sole_reference_for is not None else None
            pred = predict_attach(
                upper, sole, material=material, reference=ref, sole_reference=sref, check_confidence=False
            )
        except GlueCellError:
            refused += 1
            continue
        err = depth_error(pred.bite_line, truth["bite_line"])
        samples.append((material, err))
        styles.append(str(inp["workitem"].style))
        parts = pred.diagnostics["sigma_parts"]
        kept.append((pred.bite_line, truth["bite_line"], parts["model_m"], parts["slope"]))
    cal = fit_calibration(samples, styles=styles)
    if kept:
        # Sigma: errors of every line moved by the learnt offset as the cell (material unknown) will place it.
        # (each predicted point's half of the one bite-line error, :func:`gluecell.core.geometry.bite_line_error`)
        errors = [
            bite_line_error(line - np.array([0.0, 0.0, cal.offset("unknown", st)]), true).to_true
            for (line, true, _, _), st in zip(kept, styles)
        ]
        a, b, c = fit_sigma_model(errors, [k[2] for k in kept], [k[3] for k in kept])
        cal = replace(cal, sigma_scale=a, sigma_floor=b, sigma_match=c)
    return cal, {"pairs_used": float(len(samples)), "pairs_refused": float(refused)}


def _progress(ids: list[str], show: bool, what: str) -> Any:
    if not show:
        return ids
    from rich.progress import track

    return track(ids, description=what)


def _ring_problems(dataset: Any, ids: list[str], refs_for: tuple[Any, Any], progress: bool, what: str) -> list[Any]:
    """Ring problems of ``ids`` (scans through perception); pairs the predictor refuses are left out."""
    from gluecell.core.errors import GlueCellError
    from gluecell.perception.scan import scan_part_frames

    from .predict import ring_problem

    out = []
    for sid in _progress(ids, progress, what):
        inp = dataset.inputs(sid)
        try:
            upper = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
            sole = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
            ref, sref = (f(inp["workitem"]) if f is not None else None for f in refs_for)
            out.append(ring_problem(upper, sole, reference=ref, sole_reference=sref))
        except GlueCellError:
            continue
    return out


def train_on_dataset(
    dataset: Any,
    train_ids: list[str],
    val_ids: list[str],
    cfg: Any = None,
    reference_for: Any = None,
    progress: bool = False,
    sole_reference_for: Any = None,
) -> Any:
    """Train the ring-solver surrogate on the solver's outputs over ``train_ids``; metrics on ``val_ids``.

    Every material class (and "unknown") at ``cfg.e_scales`` times its modulus is solved on each pair's ring.
    Only the scans are read (the solver is the teacher, not the world's truth).
    """
    from .material import MATERIALS, UNKNOWN_MATERIAL
    from .surrogate import SurrogateConfig, train_surrogate

    cfg = cfg or SurrogateConfig()
    refs = (reference_for, sole_reference_for)
    train = _ring_problems(dataset, train_ids, refs, progress, "ring problems (train)")
    val = _ring_problems(dataset, val_ids, refs, progress, "ring problems (val)")
    moduli = sorted({m.E * f for m in (*MATERIALS.values(), UNKNOWN_MATERIAL) for f in cfg.e_scales})
    sur = train_surrogate(train, val, moduli, cfg)
    sur.metrics.update({"train_pairs": float(len(train)), "val_pairs": float(len(val))})
    return sur
