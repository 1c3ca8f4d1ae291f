"""World 2's configuration, styles and materials (every number is argued in ``datasets/world2/README.md``).

Units: metres, pascals, radians unless a name says ``_deg``. ``World2Config`` and ``Scanner2Config``
are read from the ``[world]`` / ``[scanner]`` tables of a generate TOML (unknown keys are errors).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import WorldParamError

__all__ = ["World2Config", "Scanner2Config", "Style", "STYLES", "SoleMaterial", "SOLE_MATERIALS",
           "UpperMaterial", "UPPER_MATERIALS", "EU_MM"]  # fmt: skip

#: Paris point: last length (mm) per EU size (FACTS.md: EU = 1.5 x last length in cm).
EU_MM = 20.0 / 3.0


def _check_range(name: str, lo: float, hi: float, *, low: float = 0.0) -> None:
    if not (low <= lo <= hi):
        raise WorldParamError(f"{name}: need {low} <= lo <= hi, got ({lo}, {hi})", key=name, value=(lo, hi))


@dataclass(frozen=True)
class World2Config:
    """Hidden-variation ranges of world 2 (uniform unless named ``_std``; ``_max`` clips a normal draw)."""

    ring_points: int = 320
    # the lasted upper (last copy, lasting, leather)
    last_length_var_m: float = 0.0005
    last_width_var_m: float = 0.0005
    last_spring_var_m: float = 0.0015
    feather_radius_var: float = 0.3
    waist_loose_max_m: float = 0.0015
    toe_heel_fullness_m: float = 0.001
    lasting_margin_m: tuple[float, float] = (0.012, 0.014)
    # the sole: its own CAD last and its moulding
    cad_length_var_m: float = 0.0005
    cad_spring_var_m: float = 0.001
    undersize_m: tuple[float, float] = (0.0003, 0.0012)
    shrink: tuple[float, float] = (0.005, 0.02)
    shrink_z_ratio: float = 0.5
    warp_bow_m: float = 0.001
    draft_deg: float = 1.0
    # attach
    press_pa: tuple[float, float] = (0.3e6, 0.5e6)
    place_std_m: float = 0.0007
    place_max_m: float = 0.002
    place_yaw_std_deg: float = 0.4
    place_yaw_max_deg: float = 1.0
    # stations (DESIGN.md default cell layout)
    upper_centre: tuple[float, float] = (0.55, -0.20)
    sole_centre: tuple[float, float] = (0.55, 0.20)
    station_shift_m: float = 0.008
    station_yaw_deg: float = 8.0
    upper_top_z: tuple[float, float] = (0.165, 0.19)
    tray_top_z: float = 0.02

    def __post_init__(self) -> None:
        if not 64 <= self.ring_points <= 2048:
            raise WorldParamError("ring_points must be in 64..2048", key="ring_points", value=self.ring_points)
        for name in ("lasting_margin_m", "undersize_m", "shrink", "press_pa", "upper_top_z"):
            _check_range(name, *getattr(self, name))
        if self.shrink[1] >= 0.1 or self.place_max_m > 0.01 or self.press_pa[1] > 5e6:
            raise WorldParamError("shrink < 0.1, place_max_m <= 0.01 m and press_pa <= 5 MPa", key="world")


@dataclass(frozen=True)
class Scanner2Config:
    """The depth cameras of world 2 (a D405-class passive stereo camera) and the laser line scanner."""

    width: int = 1280
    height: int = 720
    hfov_deg: float = 87.0
    baseline_m: float = 0.018
    subpixel: float = 0.08
    distance_m: float = 0.26
    elevation_deg: float = 38.0
    azimuths_deg: tuple[float, ...] = (55.0, 125.0, 235.0, 305.0)
    depth_scale: float = 0.0001
    noise_corr_px: float = 1.2
    scale_err_std: float = 0.005
    bias_std_m: float = 0.0002
    handeye_trans_std_m: float = 0.0004
    handeye_rot_std_deg: float = 0.1
    flying_px: tuple[int, int] = (1, 3)
    grazing_deg: tuple[float, float] = (68.0, 82.0)
    speckle_fraction: float = 3e-4
    laser_clouds: bool = True
    laser_pitch_m: tuple[float, float] = (0.0004, 0.0012)
    laser_noise_m: float = 0.00005
    laser_outlier_fraction: float = 0.004

    def __post_init__(self) -> None:
        if not (64 <= self.width <= 4096 and 48 <= self.height <= 4096):
            raise WorldParamError("scanner image size out of range", key="width", value=(self.width, self.height))
        if not (0.07 <= self.distance_m <= 1.0 and 10.0 <= self.elevation_deg <= 89.0 and self.azimuths_deg):
            raise WorldParamError("scanner: distance_m 0.07-1 m, elevation 10-89 deg, >= 1 azimuth", key="scanner")
        if self.depth_scale <= 0 or self.subpixel <= 0 or self.baseline_m <= 0:
            raise WorldParamError("scanner: depth_scale, subpixel and baseline_m must be > 0", key="scanner")


@dataclass(frozen=True)
class SoleMaterial:
    """A sole compound: Young's modulus range (Pa), Poisson's ratio range, stereo texture factor, albedo."""

    name: str
    E_pa: tuple[float, float]
    nu: tuple[float, float]
    texture: float
    albedo: float


SOLE_MATERIALS: dict[str, SoleMaterial] = {
    "eva": SoleMaterial("eva", (2.0e6, 5.0e6), (0.05, 0.15), 1.6, 0.85),
    "pu": SoleMaterial("pu", (4.0e6, 10.0e6), (0.30, 0.40), 2.0, 0.35),
    "tr_rubber": SoleMaterial("tr_rubber", (3.0e6, 6.0e6), (0.46, 0.49), 2.5, 0.08),
}


@dataclass(frozen=True)
class UpperMaterial:
    """An upper's surface for the cameras: stereo texture factor (1 = richly textured) and albedo."""

    name: str
    texture: float
    albedo: float


UPPER_MATERIALS: dict[str, UpperMaterial] = {
    "leather_black": UpperMaterial("leather_black", 3.0, 0.06),
    "leather_brown": UpperMaterial("leather_brown", 2.4, 0.25),
    "nubuck_tan": UpperMaterial("nubuck_tan", 1.6, 0.40),
    "patent_red": UpperMaterial("patent_red", 3.5, 0.20),
    "leather_nude": UpperMaterial("leather_nude", 2.8, 0.55),
    "mesh_grey": UpperMaterial("mesh_grey", 1.2, 0.40),
    "mesh_black": UpperMaterial("mesh_black", 1.4, 0.08),
    "synthetic_white": UpperMaterial("synthetic_white", 2.2, 0.85),
}


@dataclass(frozen=True)
class Style:
    """One shoe style of world 2 (lengths in metres at ``ref_size``; widths grade 2 mm per EU size).

    ``medial`` / ``lateral``: (xi, half-width / (ball width / 2)) control points of the last's bottom;
    ``rim``: (u, height m) corners of the sole's rim profile around the outline (u = 0 back of the heel,
    0.5 toe tip on the lateral-to-medial way round), joined by straight lines: sharp corners.
    """

    name: str
    sizes: tuple[float, ...]
    ref_size: float
    ball_width_m: float
    medial: tuple[tuple[float, float], ...]
    lateral: tuple[tuple[float, float], ...]
    toe_q: float
    toe_spring_m: float
    heel_rise_m: float
    feather_radius_m: float
    body_height_m: float
    side_taper: float
    flare_m: float
    toe_box_m: float
    leather_m: tuple[float, float]
    wall_m: float
    footbed_m: float
    rim: tuple[tuple[float, float], ...]
    sole_materials: tuple[str, ...]
    upper_materials: tuple[str, ...]


_BODY = ((0.0, 0.62), (0.18, 0.68), (0.42, 0.66), (0.68, 1.0), (0.85, 0.93), (1.0, 0.8))

STYLES: dict[str, Style] = {
    "ranger_boot": Style(
        "ranger_boot", tuple(float(s) for s in range(40, 47)), 42.0, 0.104,
        medial=((0.0, 0.60), (0.18, 0.64), (0.42, 0.62), (0.70, 1.0), (0.86, 0.92), (1.0, 0.8)),
        lateral=((0.0, 0.64), (0.18, 0.72), (0.42, 0.80), (0.64, 1.0), (0.86, 0.86), (1.0, 0.8)),
        toe_q=0.45, toe_spring_m=0.014, heel_rise_m=0.022, feather_radius_m=0.0008, body_height_m=0.11,
        side_taper=0.12, flare_m=0.0005, toe_box_m=0.030, leather_m=(0.0016, 0.0022), wall_m=0.003,
        footbed_m=0.009,
        rim=((0.0, 0.016), (0.12, 0.016), (0.2, 0.013), (0.4, 0.012), (0.47, 0.015), (0.53, 0.015),
             (0.6, 0.012), (0.8, 0.011), (0.88, 0.016), (1.0, 0.016)),
        sole_materials=("tr_rubber", "pu"), upper_materials=("leather_black", "leather_brown", "nubuck_tan"),
    ),
    "court_flat": Style(
        "court_flat", tuple(float(s) for s in range(36, 42)), 38.0, 0.084,
        medial=((0.0, 0.58), (0.18, 0.62), (0.42, 0.45), (0.70, 1.0), (0.86, 0.90), (1.0, 0.8)),
        lateral=((0.0, 0.62), (0.18, 0.70), (0.42, 0.62), (0.64, 1.0), (0.86, 0.80), (1.0, 0.8)),
        toe_q=0.75, toe_spring_m=0.006, heel_rise_m=0.010, feather_radius_m=0.0015, body_height_m=0.045,
        side_taper=0.18, flare_m=0.0, toe_box_m=0.022, leather_m=(0.0010, 0.0015), wall_m=0.0018,
        footbed_m=0.005,
        rim=((0.0, 0.009), (0.1, 0.009), (0.16, 0.007), (0.84, 0.007), (0.9, 0.009), (1.0, 0.009)),
        sole_materials=("tr_rubber", "pu"), upper_materials=("leather_black", "patent_red", "leather_nude"),
    ),
    "rocker_trail": Style(
        "rocker_trail", tuple(float(s) for s in range(39, 47)), 42.0, 0.100,
        medial=_BODY, lateral=((0.0, 0.64), (0.18, 0.72), (0.42, 0.76), (0.64, 1.0), (0.86, 0.86), (1.0, 0.8)),
        toe_q=0.55, toe_spring_m=0.024, heel_rise_m=0.010, feather_radius_m=0.004, body_height_m=0.075,
        side_taper=0.10, flare_m=0.0008, toe_box_m=0.028, leather_m=(0.0010, 0.0016), wall_m=0.0025,
        footbed_m=0.012,
        rim=((0.0, 0.022), (0.1, 0.022), (0.2, 0.014), (0.43, 0.014), (0.44, 0.020), (0.56, 0.020),
             (0.57, 0.013), (0.8, 0.013), (0.9, 0.022), (1.0, 0.022)),
        sole_materials=("eva", "pu"), upper_materials=("mesh_grey", "mesh_black", "synthetic_white"),
    ),
}  # fmt: skip
