"""The predictor on a pair of the synthetic world, scanned by its virtual cameras through perception."""

from __future__ import annotations

import numpy as np
import pytest

#: The calibrated predictor (style references + the shipped calibration, as the demo runs it) on this boot
#: (seed 3) of the reworked world (issue 12, round 2), whose CAD-nominal references no longer share the pair's
#: last: measured p95 2.36 mm, 91 % of points within 2 sigma, sigma p95 1.06 mm (over the predictor's 1 mm limit,
#: so the default predictor sends the pair to a human). Issue 14's goals (0.5 mm, 95 %) are not reached yet.
CAL_P95_MM = 3.0
CAL_WITHIN_2SIGMA = 0.85
#: The plain solver (no references, no calibration) on this boot: p95 2.25 mm, max 2.88 mm, but sigma p95 only
#: 0.58 mm and 37 % of points within 2 sigma (issue 13, item 4): its sigma does not cover its error, which is why
#: such a line goes to a human.
PLAIN_P95_MM = 3.0
PLAIN_WITHIN_2SIGMA_MAX = 0.6


@pytest.fixture(scope="module")
def world_scans():
    from gluecell.datasets.world import make_pair
    from gluecell.datasets.world.scanner import scan_part
    from gluecell.perception.scan import scan_part_frames

    pair = make_pair(3)
    rng = np.random.default_rng(3)
    upper = scan_part_frames(scan_part(pair, "upper", rng).frames, "upper", item_id="w3")
    sole = scan_part_frames(scan_part(pair, "sole", rng).frames, "sole", item_id="w3")
    return pair, upper, sole


@pytest.mark.slow
def test_world_pair_prediction(world_scans) -> None:
    from gluecell.cell.sim.references import nominal_sole, nominal_upper
    from gluecell.core.geometry import bite_line_error
    from gluecell.deformation.calibration import DEFAULT_CALIBRATION, load_calibration
    from gluecell.deformation.line import predict_bite_line

    pair, upper, sole = world_scans
    plain = predict_bite_line(upper, sole, check_confidence=False)
    e = bite_line_error(plain.line, pair.bite_line)
    assert e.p95_mm < PLAIN_P95_MM
    assert np.linalg.norm(np.roll(plain.line, -1, axis=0) - plain.line, axis=1).max() <= 1.0e-3
    # its sigma does not cover its error, and the line says so: the plan goes to a human
    assert np.mean(e.to_true <= 2 * plain.sigma) < PLAIN_WITHIN_2SIGMA_MAX
    assert any(r.startswith("line uncertain: no depth calibration") for r in plain.reasons)
    # the style's nominal upper and sole with the shipped calibration: the bench's level, and a sigma that covers
    cal = predict_bite_line(upper, sole, check_confidence=False, calibration=load_calibration(DEFAULT_CALIBRATION),
                            reference=nominal_upper({}, pair.item)[:2], sole_reference=nominal_sole({}, pair.item),
                            style=pair.item.style)  # fmt: skip
    ec = bite_line_error(cal.line, pair.bite_line)
    assert ec.p95_mm < CAL_P95_MM
    assert np.mean(ec.to_true <= 2 * cal.sigma) >= CAL_WITHIN_2SIGMA
    assert np.mean(ec.to_true <= 2 * cal.sigma) > np.mean(e.to_true <= 2 * plain.sigma) + 0.3  # calibrated sigma
    assert cal.reasons == ()


@pytest.mark.slow
def test_world_sole_of_another_pair_size_is_refused(world_scans) -> None:
    from gluecell.core.types import PartScan
    from gluecell.deformation.errors import AttachPoseError, SizeMismatchError
    from gluecell.deformation.predict import predict_attach

    _, upper, sole = world_scans
    c = sole.points.mean(axis=0)
    big = PartScan(part="sole", points=(sole.points - c) * 1.12 + c, normals=sole.normals)
    with pytest.raises((SizeMismatchError, AttachPoseError)):
        predict_attach(upper, big)
