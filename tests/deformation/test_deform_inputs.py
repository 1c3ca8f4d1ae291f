"""Bad input gets its own error and never a bite line."""

from __future__ import annotations

import numpy as np
import pytest

from gluecell.core.types import PartScan
from gluecell.deformation.errors import (
    LowConfidenceError,
    NonFiniteScanError,
    NotAnUpperError,
    NotASoleError,
    SizeMismatchError,
    SoleUpsideDownError,
    TooFewPointsError,
)
from gluecell.deformation.inputs import MIN_POINTS, scan_from_arrays
from gluecell.deformation.predict import PredictConfig, predict_attach


def test_nan_points_are_refused(flat_pair) -> None:
    upper, _, _ = flat_pair
    pts = np.array(upper.points)
    pts[10, 1] = np.nan
    with pytest.raises(NonFiniteScanError):
        scan_from_arrays("upper", pts, upper.normals)


def test_too_few_points(flat_pair, geom) -> None:
    upper, _, _ = flat_pair
    sparse = geom.scan_mesh(geom.make_sole(), "sole", n=int(MIN_POINTS * 0.8), seed=5)
    assert len(sparse) < MIN_POINTS
    with pytest.raises(TooFewPointsError):
        predict_attach(upper, sparse)


def test_sole_upside_down(flat_pair, geom) -> None:
    upper, _, _ = flat_pair
    flipped = geom.scan_mesh(geom.make_sole(upside_down=True), "sole", seed=6)
    with pytest.raises(SoleUpsideDownError):
        predict_attach(upper, flipped)


def test_upper_given_as_sole_is_not_a_sole(flat_pair) -> None:
    upper, _, _ = flat_pair
    as_sole = PartScan(part="sole", points=upper.points - [0, -0.4, 0.06], normals=upper.normals)
    with pytest.raises(NotASoleError):
        predict_attach(upper, as_sole)


def test_sole_given_as_upper_is_not_an_upper(flat_pair) -> None:
    _, sole, _ = flat_pair
    as_upper = PartScan(part="upper", points=sole.points - [0, 0.4, 0], normals=sole.normals)
    with pytest.raises(NotAnUpperError):
        predict_attach(as_upper, sole)


def test_a_box_is_not_a_sole(flat_pair) -> None:
    import trimesh

    upper, _, _ = flat_pair
    box = trimesh.creation.box(extents=(0.2, 0.2, 0.04))
    box.apply_translation([0.55, 0.2, 0.04])
    pts, fi = trimesh.sample.sample_surface(box, 20000, seed=1)
    nrm = box.face_normals[fi]
    keep = nrm[:, 2] > -0.3
    with pytest.raises(NotASoleError):
        predict_attach(upper, PartScan(part="sole", points=pts[keep], normals=nrm[keep]))


@pytest.mark.parametrize("scale", [0.88, 1.08])
def test_sole_far_too_small_or_large(flat_pair, geom, scale: float) -> None:
    upper, _, _ = flat_pair
    sole = geom.scan_mesh(geom.make_sole(scale=scale), "sole", seed=7)
    with pytest.raises(SizeMismatchError):
        predict_attach(upper, sole)


def test_low_confidence_is_refused_with_the_prediction_attached(flat_pair) -> None:
    upper, sole, _ = flat_pair
    with pytest.raises(LowConfidenceError) as info:
        predict_attach(upper, sole, cfg=PredictConfig(max_sigma=0.05e-3))
    assert info.value.partial is not None
    assert len(info.value.partial.bite_line) > 100


def test_unknown_material_is_an_error(flat_pair) -> None:
    from gluecell.deformation.errors import DeformationError

    upper, sole, _ = flat_pair
    with pytest.raises(DeformationError, match="unknown sole material"):
        predict_attach(upper, sole, material="cardboard")
