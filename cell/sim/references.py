"""The style library of the simulated cell and its taught pairs.

- The **style reference** of a style/size/side is its CAD nominal: the last and the sole mould as designed,
  with no hidden variation (``gluecell.datasets.world.make_nominal_pair``), placed at the station centres; a
  plant has it as CAD data. The deformation step registers it onto the scans
  (``predict_attach(reference=..., sole_reference=...)``) to fill what the cameras miss. It is never a world
  pair: a world pair would share this pair's last and hidden design with the pairs it is compared with.
- The **taught pair** of teach-once is one real pair of the style/size/side (``TAUGHT_SEED``, never a bench
  or training seed), scanned by the cell like any other pair; its line is the one the teacher marked on it
  (the world's true line of that pair).
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["TAUGHT_SEED", "NOMINAL_SEED", "nominal_pair", "nominal_upper", "nominal_sole", "taught_world_pair",
           "dataset_cameras", "taught_world2_frames", "nominal_world2"]  # fmt: skip

#: Seed of the taught pair of every style/size/side (the teacher's real pair).
TAUGHT_SEED = 424242
#: Former name of :data:`TAUGHT_SEED` (the style reference was this world pair before issue 12).
NOMINAL_SEED = TAUGHT_SEED
#: Points sampled from each nominal part.
N_POINTS = 40_000


def nominal_pair(cache: dict, item: Any) -> Any:
    """The CAD nominal pair (WorldPair, no hidden variation) of ``item``'s style, size and side; cached."""
    from gluecell.datasets.world import make_nominal_pair

    key = ("pair", item.style, float(item.size_eu), item.side)
    if key not in cache:
        cache[key] = make_nominal_pair(item.style, float(item.size_eu), item.side)
    return cache[key]


def taught_world_pair(item: Any, seed: int = TAUGHT_SEED) -> Any:
    """The teacher's real pair of ``item``'s style, size and side (a world pair with its own hidden variation)."""
    from gluecell.cell.sim.world import make_pair

    return make_pair(seed, style=item.style, size_eu=item.size_eu, side=item.side, item_id=f"taught-{seed}")


def dataset_cameras(info: dict) -> Any:
    """The cell (fixed per-camera errors) a dataset was generated with, from its ``meta/info.json`` dict: the
    taught pair is scanned by the same cameras as the dataset's pairs."""
    from gluecell.core.config import from_dict
    from gluecell.datasets.generate import GenerateOptions
    from gluecell.datasets.generate import dataset_cameras as cameras_of
    from gluecell.datasets.world import WorldConfig
    from gluecell.datasets.world.scanner import ScannerConfig

    cfg = info.get("config", {})
    world = from_dict(WorldConfig, cfg.get("world") or {}, path="world")
    scanner = from_dict(ScannerConfig, cfg.get("scanner") or {}, path="scanner")
    return cameras_of(GenerateOptions(n=1, seed=int(info["seed"]), world=world, scanner=scanner))


def nominal_upper(cache: dict, item: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(points (n, 3), normals (n, 3), CAD bite line (m, 3)) of the CAD nominal upper of ``item``'s style, size
    and side, base_link metres at the upper station; cached in ``cache``."""
    key = ("upper", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pair = nominal_pair(cache, item)
        pts, fi = pair.upper_mesh.sample(N_POINTS, return_index=True, seed=1)
        cache[key] = (np.asarray(pts), np.asarray(pair.upper_mesh.face_normals[fi]), np.asarray(pair.bite_line))
    return cache[key]


def nominal_sole(cache: dict, item: Any) -> tuple[np.ndarray, np.ndarray]:
    """(points, normals) of the CAD nominal sole of ``item``'s style, size and side (free, footbed up at the sole
    station); cached in ``cache``."""
    key = ("sole", item.style, float(item.size_eu), item.side)
    if key not in cache:
        pair = nominal_pair(cache, item)
        pts, fi = pair.sole_mesh.sample(N_POINTS, return_index=True, seed=1)
        cache[key] = (np.asarray(pts), np.asarray(pair.sole_mesh.face_normals[fi]))
    return cache[key]


def taught_world2_frames(item: Any, dataset_seed: int, seed: int = TAUGHT_SEED) -> tuple[dict[str, list], Any] | None:
    """The teacher's real pair of a world-2 style/size/side, scanned by the dataset's world-2 cell: ({part: depth
    frames}, the pair), or None for a style world 2 does not make. The pair is the first seed from ``seed`` whose
    draw has the item's size and side (read from the pair's item draw alone, without building the others)."""
    from gluecell.datasets.world2.config import STYLES, Scanner2Config, World2Config
    from gluecell.datasets.world2.pair import make_pair2
    from gluecell.datasets.world2.scanner import cell_errors, scan_station

    if item.style not in STYLES:
        return None
    st = STYLES[item.style]
    for s in range(seed, seed + 400):
        r_item = np.random.default_rng(np.random.SeedSequence(s).spawn(5)[0])
        size = float(st.sizes[int(r_item.integers(len(st.sizes)))])
        side = "left" if r_item.random() < 0.5 else "right"
        if size == float(item.size_eu) and side == item.side:
            break
    else:
        return None
    wcfg, scfg = World2Config(), Scanner2Config()
    pair = make_pair2(np.random.SeedSequence(s), wcfg, style=item.style, item_id=f"taught-{s}")
    errs = cell_errors(dataset_seed, 2 * len(scfg.azimuths_deg), scfg)
    rng = np.random.default_rng(s)
    frames = {part: scan_station(pair, part, rng, scfg, wcfg, errs)[0] for part in ("upper", "sole")}
    return frames, pair


def nominal_world2(cache: dict, item: Any) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """{"upper": (points, normals), "sole": (points, normals)} of a world-2 style's CAD nominal
    (:func:`gluecell.datasets.world2.reference.nominal_parts`: no per-pair truth), or None for another style."""
    import trimesh

    from gluecell.core.errors import GlueCellError
    from gluecell.datasets.world2.reference import nominal_parts

    key = ("world2", item.style, float(item.size_eu), item.side)
    if key not in cache:
        try:
            parts = nominal_parts(item.style, float(item.size_eu), item.side)
        except GlueCellError:
            cache[key] = None
            return None
        out = {}
        for part in ("upper", "sole"):
            mesh = trimesh.Trimesh(parts[f"{part}_vertices"], parts[f"{part}_faces"], process=False)
            pts, fi = mesh.sample(N_POINTS, return_index=True, seed=1)
            out[part] = (np.asarray(pts), np.asarray(mesh.face_normals[fi]))
        cache[key] = out
    return cache[key]
