"""What the benches need to run on either world (issue 14, item 2): world 2 is a test set only, so nothing is
fitted on it; its styles are not in the cell's style library, so a pair of such a style falls back to no style
reference and no calibration (the shipped calibration was learnt with references), with the reason logged;
its sole materials are mapped to the model's classes; its teach-once baseline is taught on one world-2 pair of
the style/size/side scanned by the dataset's own world-2 cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["is_test_world", "material_class", "shipped_calibration", "style_references", "taught_world2"]


def taught_world2(item: Any, dataset_seed: int) -> Any:
    """The taught pair of a world-2 style: one world-2 pair of the style/size/side (its own hidden variation),
    scanned by the dataset's world-2 cell; None when it cannot be made or scanned."""
    from gluecell.cell.sim.references import taught_world2_frames
    from gluecell.core.errors import GlueCellError
    from gluecell.deformation.taught import TaughtPair
    from gluecell.perception.scan import scan_part_frames

    got = taught_world2_frames(item, dataset_seed)
    if got is None:
        return None
    frames, pair = got
    try:
        up = scan_part_frames(frames["upper"], "upper", item_id="taught")
        so = scan_part_frames(frames["sole"], "sole", item_id="taught")
    except GlueCellError:
        return None
    line = np.asarray(pair.bite_line)
    taught = TaughtPair(upper=(up.points, up.normals), sole=(so.points, so.normals), bite_line=line)
    taught.cache["material_class"] = material_class(pair.sole_material)
    return taught


def material_class(name: Any) -> str | None:
    """The model's material class of the world's sole material ``name``: the class itself, or the class named by
    one of its words ("tr_rubber" -> "rubber", as a plant would file a thermoplastic rubber); None (unknown)."""
    from gluecell.deformation.material import MATERIALS

    key = str(name).lower()
    if key in MATERIALS:
        return key
    return next((w for w in key.replace("-", "_").split("_") if w in MATERIALS), None)


def style_references(cache: dict, item: Any, calibration: Any) -> tuple[Any, Any, Any]:
    """(upper reference, sole reference, calibration) for ``item``: the style library's CAD references and the
    calibration learnt with them; for a style the library does not hold (e.g. every style of world 2), no
    reference and no calibration (the calibration was learnt with references), the reason recorded in
    ``cache["fallbacks"]`` (style -> reason)."""
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.core.errors import GlueCellError

    try:
        return nominal_upper(cache, item)[:2], nominal_sole(cache, item), calibration
    except (GlueCellError, KeyError, ValueError) as exc:
        reasons = cache.setdefault("fallbacks", {})
        if item.style not in reasons:
            import logging

            reasons[item.style] = f"style {item.style!r} not in the style library ({exc}); no reference, no calibration"
            logging.getLogger(__name__).warning("bench: %s", reasons[item.style])
        return None, None, None


def is_test_world(ds: Any) -> bool:
    """True for a dataset of a test-only world (world 2: nothing may be fitted on it)."""
    info = getattr(ds, "info", {}) or {}
    return str(info.get("world", "")) == "world2" or str(info.get("generator", "")).startswith("gluecell-world2")


def shipped_calibration() -> Any:
    """The calibration shipped with the package (learnt on world 1's train split)."""
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration

    return load_calibration(DEFAULT_CALIBRATION)
