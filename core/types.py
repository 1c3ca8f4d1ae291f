"""The values that travel between stages (DESIGN.md, "The flow of one pair").

Every value is a frozen dataclass over read-only numpy arrays, validated on
construction. SI units (metres, seconds, radians); every geometry names its frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .errors import ValidationError
from .validate import as_array, as_points, as_pose, as_quaternions

__all__ = [
    "Part",
    "Side",
    "PARTS",
    "SIDES",
    "CameraIntrinsics",
    "DepthFrame",
    "PartScan",
    "AttachPrediction",
    "SprayPath",
    "RobotProgram",
    "Inspection",
    "InspectionView",
    "Defect",
    "VERDICTS",
    "DEFECT_TYPES",
    "WorkItem",
]

Part = Literal["upper", "sole"]
Side = Literal["left", "right"]
PARTS: tuple[str, ...] = ("upper", "sole")
SIDES: tuple[str, ...] = ("left", "right")


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValidationError(f"{name}: {value!r} is not one of {', '.join(allowed)}", field=name)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of a depth image (pixels); distortion is ignored (D4xx depth is rectified)."""

    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise ValidationError(f"intrinsics: bad image size {self.width}x{self.height}")
        vals = np.array([self.fx, self.fy, self.cx, self.cy], dtype=float)
        if not np.all(np.isfinite(vals)) or self.fx <= 0 or self.fy <= 0:
            raise ValidationError(f"intrinsics: focal lengths must be finite and > 0, got {vals.tolist()}")

    @property
    def K(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0, self.cx], [0, self.fy, self.cy], [0, 0, 1.0]])


@dataclass(frozen=True)
class DepthFrame:
    """One depth image (and optional colour) from one camera.

    Attributes:
        depth: (h, w) uint16 raw depth units; 0 = no data.
        depth_scale: metres per depth unit (D4xx: 0.001 by default, 0.0001 for D405).
        intrinsics: depth-image intrinsics.
        T_base_cam: (4, 4) float64, the camera pose in ``base_link`` as the cell
            *believes* it (from hand-eye calibration), optical frame (z forward).
        color: (h, w, 3) uint8 RGB aligned to depth, or None.
        stamp: seconds.
        serial: camera serial number or simulated id.
    """

    depth: np.ndarray
    depth_scale: float
    intrinsics: CameraIntrinsics
    T_base_cam: np.ndarray
    color: np.ndarray | None = None
    stamp: float = 0.0
    serial: str = ""

    def __post_init__(self) -> None:
        d = np.asarray(self.depth)
        if d.dtype != np.uint16 or d.ndim != 2:
            raise ValidationError(f"depth: expected (h, w) uint16, got {d.dtype} {d.shape}")
        if d.shape != (self.intrinsics.height, self.intrinsics.width):
            raise ValidationError(
                f"depth: shape {d.shape} does not match intrinsics {self.intrinsics.height}x{self.intrinsics.width}"
            )
        if not (np.isfinite(self.depth_scale) and self.depth_scale > 0):
            raise ValidationError(f"depth_scale must be > 0, got {self.depth_scale}")
        d = d.copy()
        d.setflags(write=False)
        _set(self, "depth", d)
        _set(self, "T_base_cam", as_pose("T_base_cam", self.T_base_cam))
        if self.color is not None:
            c = np.asarray(self.color)
            if c.dtype != np.uint8 or c.shape != (*d.shape, 3):
                raise ValidationError(f"color: expected {(*d.shape, 3)} uint8, got {c.dtype} {c.shape}")
            c = c.copy()
            c.setflags(write=False)
            _set(self, "color", c)


@dataclass(frozen=True)
class PartScan:
    """A cleaned scan of one part in ``base_link``.

    Attributes:
        part: "upper" or "sole".
        points: (n, 3) float64, metres, ``frame``.
        normals: (n, 3) float64 unit outward normals, or None.
        mesh_vertices / mesh_faces: optional surface mesh ((v, 3) float64, (f, 3) int64).
        frame: frame of all geometry, "base_link" for the planner.
        item_id: work item this scan belongs to.
        diagnostics: free-form numbers from the stage that made it (fitness, rmse, counts).
    """

    part: str
    points: np.ndarray
    normals: np.ndarray | None = None
    mesh_vertices: np.ndarray | None = None
    mesh_faces: np.ndarray | None = None
    frame: str = "base_link"
    item_id: str = ""
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_choice("part", self.part, PARTS)
        pts = as_points("points", self.points, min_rows=1)
        _set(self, "points", pts)
        if self.normals is not None:
            n = as_points("normals", self.normals)
            if n.shape != pts.shape:
                raise ValidationError(f"normals: shape {n.shape} does not match points {pts.shape}")
            norms = np.linalg.norm(n, axis=1)
            if np.any(np.abs(norms - 1.0) > 1e-3):
                raise ValidationError("normals: every normal must have unit length")
            _set(self, "normals", n)
        if (self.mesh_vertices is None) != (self.mesh_faces is None):
            raise ValidationError("mesh_vertices and mesh_faces must be given together")
        if self.mesh_vertices is not None:
            v = as_points("mesh_vertices", self.mesh_vertices, min_rows=3)
            f = as_array("mesh_faces", self.mesh_faces, ndim=2, cols=3, dtype=np.int64, min_rows=1)
            if f.min() < 0 or f.max() >= len(v):
                raise ValidationError("mesh_faces: index out of range")
            _set(self, "mesh_vertices", v)
            _set(self, "mesh_faces", f)

    def __len__(self) -> int:
        return len(self.points)


@dataclass(frozen=True)
class AttachPrediction:
    """Predicted result of pressing the sole onto the upper.

    Attributes:
        bite_line: (m, 3) float64, metres, ``base_link`` (upper station); closed, ordered
            polyline on the upper surface (last point is not repeated).
        bite_line_sigma: (m,) float64, metres, 1-sigma uncertainty per point.
        upper_bond: (k, 3) float64 points of the upper's bond region.
        sole_bond: (j, 3) float64 points of the sole's bond region (sole station frame).
        deformed_sole: (s, 3) float64 sole points after pressing, in the upper station.
    """

    bite_line: np.ndarray
    bite_line_sigma: np.ndarray
    upper_bond: np.ndarray | None = None
    sole_bond: np.ndarray | None = None
    deformed_sole: np.ndarray | None = None
    frame: str = "base_link"
    item_id: str = ""
    diagnostics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        bl = as_points("bite_line", self.bite_line, min_rows=8)
        sig = as_array("bite_line_sigma", self.bite_line_sigma, ndim=1)
        if sig.shape[0] != bl.shape[0]:
            raise ValidationError("bite_line_sigma: one value per bite-line point is required")
        if np.any(sig < 0):
            raise ValidationError("bite_line_sigma: must be >= 0")
        _set(self, "bite_line", bl)
        _set(self, "bite_line_sigma", sig)
        for name in ("upper_bond", "sole_bond", "deformed_sole"):
            val = getattr(self, name)
            if val is not None:
                _set(self, name, as_points(name, val))


@dataclass(frozen=True)
class SprayPath:
    """A timed nozzle path over one part.

    Attributes:
        part: "upper" or "sole".
        t: (n,) float64 seconds, non-decreasing.
        xyz: (n, 3) float64 metres, nozzle tip in ``frame``.
        quat_xyzw: (n, 4) float64 unit quaternions; the nozzle frame's +z is the spray direction.
        spray: (n,) bool, gun on while moving to the next waypoint.
    """

    part: str
    t: np.ndarray
    xyz: np.ndarray
    quat_xyzw: np.ndarray
    spray: np.ndarray
    frame: str = "base_link"

    def __post_init__(self) -> None:
        _check_choice("part", self.part, PARTS)
        xyz = as_points("xyz", self.xyz, min_rows=2)
        n = len(xyz)
        t = as_array("t", self.t, ndim=1)
        q = as_quaternions("quat_xyzw", self.quat_xyzw)
        s = as_array("spray", self.spray, ndim=1, dtype=bool)
        for name, arr in (("t", t), ("quat_xyzw", q), ("spray", s)):
            if arr.shape[0] != n:
                raise ValidationError(f"{name}: {arr.shape[0]} rows, expected {n} (one per waypoint)")
        if np.any(np.diff(t) < 0):
            raise ValidationError("t: waypoint times must be non-decreasing")
        _set(self, "xyz", xyz)
        _set(self, "t", t)
        _set(self, "quat_xyzw", q)
        _set(self, "spray", s)

    def __len__(self) -> int:
        return len(self.xyz)


@dataclass(frozen=True)
class RobotProgram:
    """A joint trajectory with gun switching, ready for ``FollowJointTrajectory``.

    Attributes:
        joint_names: names in the robot's order.
        t: (n,) float64 seconds from start, strictly increasing.
        q: (n, dof) float64 radians.
        qd: (n, dof) float64 rad/s, or None.
        gun_events: ((time_s, on), ...) sorted by time.
    """

    joint_names: tuple[str, ...]
    t: np.ndarray
    q: np.ndarray
    qd: np.ndarray | None = None
    gun_events: tuple[tuple[float, bool], ...] = ()

    def __post_init__(self) -> None:
        dof = len(self.joint_names)
        if dof == 0:
            raise ValidationError("joint_names: at least one joint is required")
        t = as_array("t", self.t, ndim=1, min_rows=1)
        q = as_array("q", self.q, ndim=2, cols=dof)
        if q.shape[0] != t.shape[0]:
            raise ValidationError("q: one row per time stamp is required")
        if np.any(np.diff(t) <= 0):
            raise ValidationError("t: times must be strictly increasing")
        _set(self, "t", t)
        _set(self, "q", q)
        if self.qd is not None:
            qd = as_array("qd", self.qd, ndim=2, cols=dof)
            if qd.shape != q.shape:
                raise ValidationError("qd: must match q")
            _set(self, "qd", qd)
        times = [float(e[0]) for e in self.gun_events]
        if any(not np.isfinite(x) for x in times) or times != sorted(times):
            raise ValidationError("gun_events: times must be finite and sorted")

    @property
    def duration(self) -> float:
        """Seconds from first to last point."""
        return float(self.t[-1] - self.t[0])


#: "pass" / "fail" / "uncertain" (-> a human) are what ``gluecell.quality.inspect`` returns;
#: "rework" / "reject" are kept for callers that route without the quality stage.
VERDICTS: tuple[str, ...] = ("pass", "rework", "reject", "fail", "uncertain")
#: Defect types an inspection names (issue 16): missing glue in the bond band, glue above the bite line,
#: film too thin, blob or drip.
DEFECT_TYPES: tuple[str, ...] = ("gap", "above", "thin", "blob")


@dataclass(frozen=True)
class Defect:
    """One defect found by an inspection.

    Attributes:
        kind: one of :data:`DEFECT_TYPES`.
        score: 0..1 confidence of the stage that found it.
        view: index of the inspection view it was seen in.
        bbox_px: (x0, y0, x1, y1) pixel box in that view's image.
        xyz: (3,) float64 metres, base_link, its centre (NaN where depth was missing).
        size_mm: overspray distance (above), area in mm^2 (gap, thin, blob).
        crop: (h, w, 3) uint8 image crop for the rework bin, or None.
    """

    kind: str
    score: float
    view: int = 0
    bbox_px: tuple[int, int, int, int] = (0, 0, 0, 0)
    xyz: tuple[float, float, float] = (float("nan"),) * 3
    size_mm: float = 0.0
    crop: np.ndarray | None = None

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, DEFECT_TYPES)
        if not (np.isfinite(self.score) and 0.0 <= self.score <= 1.0):
            raise ValidationError(f"defect score must be within 0..1, got {self.score}")


@dataclass(frozen=True)
class InspectionView:
    """What the inspection station sees of one part from one camera (UV-A light, long-pass filter).

    Attributes:
        image: (h, w, 3) uint8 RGB fluorescence image.
        depth_before / depth_after: (h, w) uint16 depth registered to ``image`` before / after spraying;
            0 = no data; metres = value x ``depth_scale``.
        depth_scale: metres per depth unit.
        intrinsics: pinhole intrinsics of ``image``.
        T_base_cam: (4, 4) float64 camera pose in ``base_link`` as calibrated (optical frame, z forward).
    """

    image: np.ndarray
    depth_before: np.ndarray
    depth_after: np.ndarray
    depth_scale: float
    intrinsics: CameraIntrinsics
    T_base_cam: np.ndarray

    def __post_init__(self) -> None:
        img = np.asarray(self.image)
        hw = (self.intrinsics.height, self.intrinsics.width)
        if img.dtype != np.uint8 or img.shape != (*hw, 3):
            raise ValidationError(f"image: expected {(*hw, 3)} uint8, got {img.dtype} {img.shape}")
        for name in ("depth_before", "depth_after"):
            d = np.asarray(getattr(self, name))
            if d.dtype != np.uint16 or d.shape != hw:
                raise ValidationError(f"{name}: expected {hw} uint16, got {d.dtype} {d.shape}")
        if not (np.isfinite(self.depth_scale) and self.depth_scale > 0):
            raise ValidationError(f"depth_scale must be > 0, got {self.depth_scale}")
        _set(self, "T_base_cam", as_pose("T_base_cam", self.T_base_cam))


@dataclass(frozen=True)
class Inspection:
    """Result of inspecting the glue on one part.

    Attributes:
        coverage: fraction 0..1 of the bond band covered.
        overspray_mm: worst glue height above the bite line, millimetres (report unit).
        gap_area_mm2: uncovered area inside the band, mm^2.
        verdict: one of :data:`VERDICTS` (the quality stage gives "pass", "fail" or "uncertain").
        defects: the defects found (type, score, location, crop).
        diagnostics: numbers from the stage (timings, scores, model id).
    """

    item_id: str
    part: str
    coverage: float
    overspray_mm: float
    gap_area_mm2: float
    verdict: str
    diagnostics: dict = field(default_factory=dict)
    defects: tuple[Defect, ...] = ()

    def __post_init__(self) -> None:
        _check_choice("part", self.part, PARTS)
        _check_choice("verdict", self.verdict, VERDICTS)
        for name in ("coverage", "overspray_mm", "gap_area_mm2"):
            v = float(getattr(self, name))
            if not np.isfinite(v) or v < 0:
                raise ValidationError(f"{name}: must be finite and >= 0, got {v}")
        if self.coverage > 1.0:
            raise ValidationError(f"coverage: must be <= 1, got {self.coverage}")
        _set(self, "defects", tuple(self.defects))

    @property
    def defect_types(self) -> tuple[str, ...]:
        """Sorted distinct defect kinds."""
        return tuple(sorted({d.kind for d in self.defects}))


@dataclass(frozen=True)
class WorkItem:
    """One pair to process: what the MES or the conveyor says arrives."""

    item_id: str
    style: str
    size_eu: float
    side: str

    def __post_init__(self) -> None:
        if not self.item_id or len(self.item_id) > 128 or not self.item_id.isprintable():
            raise ValidationError(f"item_id: must be 1-128 printable characters, got {self.item_id!r}")
        _check_choice("side", self.side, SIDES)
        if not np.isfinite(self.size_eu):
            raise ValidationError("size_eu: must be finite")
