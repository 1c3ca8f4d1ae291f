"""Fixtures: a synthetic fronto-parallel view with known geometry, and a tiny generated inspection dataset."""

import numpy as np
import pytest

from gluecell.core.plan import Plan
from gluecell.core.types import CameraIntrinsics, InspectionView, SprayPath

#: The synthetic station: a vertical wall 0.16 m in front of a camera looking along +x (base_link).
WALL_X = 0.16
PX = 128
FX = 300.0
DEPTH_SCALE = 1e-4
LINE_Z = 0.0  # the predicted bite line runs horizontally at z = 0 on the wall; bond side is z > 0


def camera_pose() -> np.ndarray:
    """Optical frame: z forward = +x, x right = -y, y down = -z."""
    T = np.eye(4)
    T[:3, :3] = np.column_stack([[0, -1, 0], [0, 0, -1], [1, 0, 0]])
    return T


def wall_view(glue_from_z: float | None, glue_to_z: float = 0.02, film_m: float = 2e-4, seed: int = 0,
              brightened: bool = False) -> InspectionView:  # fmt: skip
    """The wall seen by the camera; glue (tracer blue) between heights ``glue_from_z`` and ``glue_to_z`` (m)."""
    rng = np.random.default_rng(seed)
    K = CameraIntrinsics(PX, PX, FX, FX, (PX - 1) / 2, (PX - 1) / 2)
    v = np.arange(PX)
    z_px = -(v - K.cy) / FX * WALL_X  # height on the wall of each image row
    base = np.array([0.7, 0.8, 1.0]) if brightened else np.array([0.08, 0.05, 0.03])
    img = np.tile(base, (PX, PX, 1)) + rng.normal(0, 0.01, (PX, PX, 3))
    film = np.zeros((PX, PX))
    if glue_from_z is not None:
        rows = (z_px >= glue_from_z) & (z_px <= glue_to_z)
        film[rows] = film_m
        img[rows] = img[rows] * 0.2 + np.array([0.28, 0.43, 0.62])
    image = np.clip(img * 255, 0, 255).astype(np.uint8)
    d0 = np.full((PX, PX), WALL_X, dtype=float) + rng.normal(0, 1e-4, (PX, PX))
    d1 = d0 - film
    units = lambda d: np.round(d / DEPTH_SCALE).astype(np.uint16)  # noqa: E731
    return InspectionView(image=image, depth_before=units(d0), depth_after=units(d1), depth_scale=DEPTH_SCALE,
                          intrinsics=K, T_base_cam=camera_pose())  # fmt: skip


def wall_plan(sigma_m: float = 0.3e-3) -> Plan:
    """A closed predicted line: a long horizontal run at z = LINE_Z on the wall (x = WALL_X)."""
    y = np.linspace(0.2, -0.2, 400)
    top = np.column_stack([np.full_like(y, WALL_X), y, np.full_like(y, LINE_Z)])
    back = np.column_stack([np.full_like(y, WALL_X + 0.1), y[::-1], np.full_like(y, LINE_Z)])
    line = np.concatenate([top, back])
    t = np.linspace(0, 1, 5)
    path = SprayPath(part="upper", t=t, xyz=np.column_stack([t * 0 + 0.1, t * 0, t * 0 + 0.01]),
                     quat_xyzw=np.tile([0, 0, 0, 1.0], (5, 1)), spray=np.ones(5, dtype=bool))  # fmt: skip
    return Plan(bite_line=line, paths=(path,), extra={"bite_line_sigma": [sigma_m] * len(line)})


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory):
    """A generated inspection dataset: 3 pairs x 2 views (one per split)."""
    from gluecell.datasets.inspection.generate import InspectionOptions, generate_inspection

    root = tmp_path_factory.mktemp("qa") / "data"
    generate_inspection(root, InspectionOptions(n=3, seed=21, views_per_pair=2, workers=1, p_fault=1.0))
    return root
