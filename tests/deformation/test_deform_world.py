"""The predictor on a pair of the synthetic world, scanned by its virtual cameras through perception."""

from __future__ import annotations

import numpy as np
import pytest

#: Honest bounds measured on the world with perception scans (see deformation/README.md): the solver's line is
#: within a few mm of the truth (the cameras above miss the toe and heel overhangs), far closer than a rigid sole.
WORLD_P95_MM = 8.0
WORLD_REF_P95_MM = 5.0
#: World 2 (issue 12): the style reference is the CAD nominal, which no longer shares this pair's last (fullness,
#: feather-edge bumps, last copy): on pair 3 it gives 2.36 mm p95 against 2.25 mm from the scans alone.
REF_SLACK_MM = 0.3


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
    from gluecell.cell.bench.deformation import pair_errors
    from gluecell.cell.sim.references import nominal_upper
    from gluecell.deformation.predict import predict_attach

    pair, upper, sole = world_scans
    pred = predict_attach(upper, sole, material=None, check_confidence=False)
    p95, _ = pair_errors(pred.bite_line, pair.bite_line)
    assert p95 < WORLD_P95_MM
    assert np.linalg.norm(np.roll(pred.bite_line, -1, axis=0) - pred.bite_line, axis=1).max() <= 1.0e-3
    # the style's CAD upper fills the overhangs the cameras miss: the line stays within the referenced bound and
    # no more than REF_SLACK_MM worse than from the scans alone (world 2's CAD differs from this pair's upper)
    pts, nrm, _ = nominal_upper({}, pair.item)
    with_ref = predict_attach(upper, sole, check_confidence=False, reference=(pts, nrm))
    p95_ref, _ = pair_errors(with_ref.bite_line, pair.bite_line)
    assert p95_ref < WORLD_REF_P95_MM and p95_ref < p95 + REF_SLACK_MM
    # the uncertainty is reported per point and is not blind to the error
    assert np.percentile(pred.bite_line_sigma, 95) > 0.3e-3


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
