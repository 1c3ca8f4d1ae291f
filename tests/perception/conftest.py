"""Shared fixtures of the perception tests."""

from pathlib import Path

import numpy as np
import pytest

BOOT = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "external" / "boot" / "boot.obj"


@pytest.fixture(scope="session")
def boot_on_station() -> tuple[np.ndarray, np.ndarray]:
    """The real boot mesh bottom-up like a lasted upper at the upper station (+Y up in the file, so -90°
    about x; top at z = 0.18 m): (vertices (v, 3) metres base_link, faces (f, 3)). Skips when absent."""
    import trimesh

    if not BOOT.is_file():
        pytest.skip(f"external boot scan not present at {BOOT} (needs ../shared)")
    m = trimesh.load(BOOT, force="mesh", process=False)
    R = np.array([[1.0, 0, 0], [0, 0, 1.0], [0, -1.0, 0]])
    v = np.asarray(m.vertices) @ R.T
    lo, hi = v.min(axis=0), v.max(axis=0)
    v = v - [(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, hi[2]] + [0.55, -0.20, 0.18]
    return v, np.asarray(m.faces)
