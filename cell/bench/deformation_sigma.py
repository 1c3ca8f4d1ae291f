"""Bench rows of the honest sigma for an unknown style (``deform_unref_*``, issue 14 item 4).

Every pair is predicted the way the cell predicts a style its library does not hold: no style references, the
shipped calibration (:data:`gluecell.deformation.calibration.DEFAULT_CALIBRATION`), whose ``unreferenced`` part
(learnt on world-1 cells other than the bench's, :mod:`gluecell.deformation.sigma_train`) then applies. On world 2
this is the ``deform_cal`` row's configuration; on world 1 it measures what "no reference" costs on pairs of
known styles. Figures: p95 / max per pair, the share of points within 2 sigma (pooled), sigma p95 (median), and the
pairs whose sigma p95 is over the 1 mm limit (``predict_attach`` raises ``LowConfidenceError`` for them: the cell
hands them to a human, the message saying why).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["unref_pair", "unref_summary"]


def unref_pair(acc: dict, calibration: Any, scans: tuple[Any, Any], style: str, true_line: np.ndarray) -> None:
    """Predict one pair without references with ``calibration`` and add its figures to ``acc``."""
    from gluecell.core.errors import GlueCellError
    from gluecell.core.geometry import bite_line_error, polyline_distance
    from gluecell.deformation.predict import predict_attach

    try:
        pred = predict_attach(*scans, calibration=calibration, style=style, check_confidence=False)
    except GlueCellError:
        acc["refused"] = acc.get("refused", 0) + 1
        return
    e = bite_line_error(pred.bite_line, true_line)
    acc.setdefault("errors", []).append((e.p95_mm, e.max_mm))
    d = polyline_distance(pred.bite_line, true_line)
    acc.setdefault("cover", []).append((int(np.sum(d <= 2 * pred.bite_line_sigma)), len(d)))
    acc.setdefault("sigma95", []).append(float(np.percentile(pred.bite_line_sigma, 95) * 1e3))


def unref_summary(acc: dict, max_sigma_m: float) -> dict[str, float]:
    """The ``deform_unref_*`` rows of ``acc``."""
    from .deformation_residual import error_rows

    return {"deform_unref_refused": float(acc.get("refused", 0)), **error_rows("deform_unref", acc, max_sigma_m)}


def to_the_human(dataset_dir: str) -> tuple[dict[str, int], list[str]]:
    """Every pair of ``dataset_dir`` through the cell's deformation step (:func:`~gluecell.deformation.line.
    predict_bite_line`, the shipped calibration, the style references only where the library holds the style):
    counts of "planned", "human: low confidence", "human: reasons", "refused", and one line per pair."""
    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.format import open_dataset
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
    from gluecell.deformation.errors import LowConfidenceError
    from gluecell.deformation.line import predict_bite_line
    from gluecell.perception.scan import scan_part_frames

    from .worlds import style_references

    ds, cal, cache = open_dataset(dataset_dir), load_calibration(DEFAULT_CALIBRATION), {}
    counts: dict[str, int] = {}
    lines = []
    for sid in ds.ids():
        inp = ds.inputs(sid)
        item = inp["workitem"]
        try:
            up = scan_part_frames(inp["frames"]["upper"], "upper", item_id=sid)
            so = scan_part_frames(inp["frames"]["sole"], "sole", item_id=sid)
            ref, sref, _ = style_references(cache, item, cal)
            pl = predict_bite_line(up, so, calibration=cal, reference=ref, sole_reference=sref, style=item.style,
                                   residual=None)  # fmt: skip
            key, why = ("human: reasons", "; ".join(pl.reasons)) if pl.reasons else ("planned", "")
            why = f"sigma p95 {pl.sigma_p95_m * 1e3:.2f} mm {why}"
        except LowConfidenceError as exc:
            key, why = "human: low confidence", exc.message
        except GlueCellError as exc:
            key, why = "refused", str(exc)
        counts[key] = counts.get(key, 0) + 1
        lines.append(f"{sid} {item.style}: {why}")
    return counts, lines


if __name__ == "__main__":
    import sys

    got, text = to_the_human(sys.argv[1])
    print("\n".join(text))
    print(got)
