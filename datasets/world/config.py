"""Configuration of the synthetic shoe world: every hidden-variation range, with its source.

``WorldConfig`` is a frozen dataclass of plain floats and tuples, so it loads from TOML with
:func:`gluecell.core.config.from_dict` and is saved next to every generated dataset.
Sources: "FACTS" = /work/shared/FACTS.md (section in brackets); "chosen" = not found publicly, the
reason is given. SI units (metres, pascals, degrees only where the name says ``_deg``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["WorldConfig", "SIZE_RANGE_EU"]

#: Sizes the world can make (EU, Paris point); also accepted as half sizes.
SIZE_RANGE_EU: tuple[float, float] = (36.0, 46.0)


@dataclass(frozen=True)
class WorldConfig:
    """Ranges of the hidden per-sample truth and fixed physical constants of the world.

    Ranges are ``(low, high)`` and drawn uniformly unless the field says otherwise.
    """

    # --- what is made -------------------------------------------------------------------------
    #: Sizes drawn when none is given: integer EU sizes in this range (FACTS [Lasts and sizes]).
    size_range_eu: tuple[float, float] = SIZE_RANGE_EU
    #: Perimeter stations of every mesh ring (~2.5 mm apart on an EU 42 last; chosen so that the
    #: chord error on the tightest plan curve (r ~ 30 mm) stays < 0.03 mm).
    n_perimeter: int = 256

    # --- upper (lasted) -------------------------------------------------------------------------
    #: Upper leather thickness (FACTS [Lasted upper]: 1.2-2.0 mm).
    leather_thickness_m: tuple[float, float] = (1.2e-3, 2.0e-3)
    #: Leather thickness the sole mould is designed for (chosen: the middle of that range).
    leather_nominal_m: float = 1.6e-3
    #: Insole board under the last bottom (chosen: a typical 2 mm cellulose board; FACTS gives the
    #: 4-6 mm sock/insole allowance on the last, of which the board is part).
    insole_thickness_m: float = 2.0e-3
    #: Lasting margin folded onto the insole (FACTS [Lasted upper]: 12-14 mm at the toe).
    lasting_margin_m: float = 13e-3
    #: Skive (taper) of the margin's inner edge (chosen: leather is skived before lasting).
    margin_skive_m: float = 6e-3
    #: Max amplitude of each of four perimeter modes (orders 2-5) of the lasted side's deviation from
    #: "last + leather" along its normal (chosen: uneven lasting tension, a few tenths of a mm; the
    #: cell cannot assume the nominal shape and must measure the upper).
    lasting_mode_amp_m: float = 0.25e-3

    # --- sole ---------------------------------------------------------------------------------
    #: Design undersize of the sole's inside against the nominal lasted upper, as a linear scale
    #: fraction (FACTS [Sole materials]: not public; chosen 1 %: ~0.5 mm on each side at the ball,
    #: so the sidewall grips the upper, cf. the 0.5 mm / 1 mm figures quoted there).
    sole_undersize: float = 0.010
    #: Hidden shrinkage / size error of the moulded sole, linear scale fraction (chosen: moulded
    #: PU/EVA/rubber shrink by ~1-2 % and vary by a fraction of that from batch to batch).
    sole_scale_error: tuple[float, float] = (-0.008, 0.008)
    #: Std of the global sidewall height error (trim/mould tolerance; chosen) and its clip.
    sidewall_error_std_m: float = 0.4e-3
    sidewall_error_max_m: float = 1.0e-3
    #: Amplitude (max) of each of the two low-order perimeter modes of the sidewall height error
    #: (chosen: a trimmed rim wanders a few tenths of a millimetre).
    sidewall_mode_amp_m: float = 0.25e-3

    # --- sole materials: Young's modulus E (Pa) and Poisson's ratio nu ----------------------------
    #: Expanded EVA (FACTS [Sole materials]: foams ~0.3 MPa racing foams, nu near 0; chosen range
    #: for ordinary cup-sole EVA 1.5-5 MPa, nu 0.05-0.25).
    eva_youngs_pa: tuple[float, float] = (1.5e6, 5.0e6)
    eva_poisson: tuple[float, float] = (0.05, 0.25)
    #: Solid rubber / TR 55-75 Shore A (FACTS: 60 A ~ 2-6 MPa; solid elastomers nu 0.45-0.5).
    rubber_youngs_pa: tuple[float, float] = (2.0e6, 6.0e6)
    rubber_poisson: tuple[float, float] = (0.45, 0.49)
    #: Microcellular PU 0.4-0.8 g/cm3 (FACTS: PU at 70 A 5-12 MPa (weak); chosen lower bound 3 MPa
    #: for the foamed grades, nu 0.30-0.45 because microcellular PU is partly compressible).
    pu_youngs_pa: tuple[float, float] = (3.0e6, 12.0e6)
    pu_poisson: tuple[float, float] = (0.30, 0.45)
    #: TPU outsoles 85-95 A (FACTS: not listed; chosen 8-30 MPa, solid so nu 0.45-0.49).
    tpu_youngs_pa: tuple[float, float] = (8.0e6, 30.0e6)
    tpu_poisson: tuple[float, float] = (0.45, 0.49)

    # --- attach (pressing) ----------------------------------------------------------------------
    #: Sole press pressure (FACTS [Cementing]: 0.3-0.5 MPa for 30-90 s).
    press_pressure_pa: tuple[float, float] = (0.3e6, 0.5e6)
    #: Adhesive film thickness between the sidewall and the upper (FACTS [Cementing]: 0.1-0.3 mm).
    glue_thickness_m: float = 0.2e-3
    #: Shear modulus of the reactivated, tacky adhesive film (chosen: soft PU film ~0.5 MPa).
    glue_shear_modulus_pa: float = 0.5e6
    #: Shape factor of the lugged floor under compression (bonded-block rubber theory; chosen 0.5).
    floor_shape_factor: float = 0.5
    #: Limit of the floor's compressive strain (chosen: cup-sole floors are bounded by the wall and
    #: foams densify; keeps the soft-EVA heel from sinking by more than ~10 % of its thickness).
    floor_strain_limit: float = 0.10
    #: Fraction of the floor compression that lifts the sidewall root (the wall root spans the floor
    #: depth; with linear compression through it the mid-depth moves by half: 0.5).
    wall_root_lift: float = 0.5

    # --- round 2 (issue 12): upper variation that moves the bite height ------------------------
    #: Localised lasting variation of the feather edge and bottom height: this many Gaussian bumps
    #: along the perimeter move the bottom and the feather-edge corner vertically (faded out over
    #: ``feather_bump_fade_m`` up the side). Chosen: how far the margin is pulled over and how the
    #: folded margin bunches differ from pair to pair by 0.5-2 mm (issue 12; hand and machine lasting
    #: leave pleats ~1 mm thick at the toe and heel curves, FACTS [Lasted upper] leather 1.2-2.0 mm).
    feather_bump_count: int = 3
    #: Max amplitude of each bump (uniform in +-max, + = the bottom stands further out), metres.
    feather_bump_amp_m: float = 1.2e-3
    #: Width (1 sigma) of each bump as a fraction of the perimeter (~20-55 mm on EU 42): localised.
    feather_bump_width: tuple[float, float] = (0.03, 0.08)
    #: Height up the side over which a bottom bump fades out (the corner and the band just above it).
    feather_bump_fade_m: float = 6e-3
    #: Toe and heel fullness: normal offset of the side at the toe cap and heel counter, each uniform
    #: in +-max (chosen: toe puffs and heel counters vary by ~1 mm in how full they stand; issue 12: 0.5-2 mm).
    toe_heel_fullness_m: float = 1.0e-3
    #: Loose lasting at the waist: the leather stands off the last's arch concavity, uniform in this
    #: range on the medial waist (half of it on the lateral), metres (chosen; 0.5-2 mm, issue 12).
    waist_loose_m: tuple[float, float] = (0.0, 1.5e-3)
    #: Last-copy variation: each factory last is a copy of the master; normal offset of the whole last
    #: c0 + c1 * (2 x_f - 1), |c0|, |c1| <= max/2 so |offset| <= max (chosen: +-0.5 mm, issue 12).
    last_copy_m: float = 0.5e-3
    #: Compressive modulus of the upper's bottom stack (insole board + folded margin) under the press
    #: (chosen: cellulose board and leather across their thickness 4-12 MPa; 0.4 MPa then compresses a
    #: 3.6 mm stack by 0.12-0.36 mm and the sole seats that much deeper).
    upper_stack_modulus_pa: tuple[float, float] = (4.0e6, 12.0e6)
    #: Share of the loose-lasting stand-off that the sole wall's grip presses back onto the last (chosen).
    leather_pushback: tuple[float, float] = (0.2, 0.6)

    # --- round 2: the sole from its own CAD -------------------------------------------------------
    #: The mould maker's last copy: normal offset of the sole's design last, uniform +-max (chosen as
    #: ``last_copy_m``: the sole and the upper are made on different copies of the master).
    sole_last_copy_m: float = 0.5e-3
    #: Draft of the cup's inner wall (outward from the design surface, degrees): moulds need 1-3 deg
    #: to release (chosen 1.5).
    sole_draft_deg: float = 1.5
    #: Cavities per mould (size/side); each has its own rim-height profile (chosen: 4-cavity moulds).
    sole_cavities: int = 4
    #: Max amplitude of each of the perimeter orders 1-4 of a cavity's rim profile (chosen: trim/mould wear).
    cavity_profile_amp_m: float = 0.3e-3
    #: Anisotropic shrinkage: extra scale +a along the length, -a across, uniform (chosen: flow
    #: direction shrinks differently, a few tenths of a percent).
    sole_shrink_aniso: tuple[float, float] = (-0.004, 0.004)
    #: Extra shrinkage in height (wall height), uniform (chosen: thick sections shrink more).
    sole_shrink_z: tuple[float, float] = (-0.008, 0.008)
    #: Warp after demoulding: toe and heel ends lift by this much, uniform +-max (chosen 1.5 mm).
    sole_warp_m: float = 1.5e-3

    # --- round 2: the attach process --------------------------------------------------------------
    #: Sole placement error on the upper (press operator/jig), per axis uniform +-max (issue 12: 1-2 mm).
    sole_place_max_m: float = 1.5e-3
    #: Sole yaw error on the upper, uniform +-max degrees (issue 12: +-1 deg).
    sole_place_yaw_deg: float = 1.0
    #: Press force per metre of wall that wedges a tight cup open, as pressure x this length (chosen:
    #: ~ the toe cap / heel seat area per metre of its wall, 60 mm); the seating stand-off is the
    #: radial interference x E w / (E w + p L).
    seat_length_m: float = 0.06
    #: Length over which the floor spreads a local seating change along the perimeter (1 sigma; chosen:
    #: a 10-15 mm floor bridges ~2 floor thicknesses): narrower bottom bumps are absorbed by the floor.
    floor_bridging_m: float = 0.02

    # --- placement (DESIGN.md "Interfaces", default cell layout) ---------------------------------
    upper_station_xy_m: tuple[float, float] = (0.55, -0.20)
    sole_station_xy_m: tuple[float, float] = (0.55, 0.20)
    #: Max offset of a part's footprint centre from its station centre (DESIGN: within +-10 mm).
    placement_max_m: float = 8e-3
    #: Max yaw of the toe away from +x (DESIGN: within +-15 deg; chosen +-10 so it is never at the edge).
    yaw_max_deg: float = 10.0
    #: Max tilt (roll, pitch) of the upper on its last pin (chosen: a few degrees).
    upper_tilt_max_deg: float = 2.0
    #: Height of the upper's highest point, i.e. its bottom, above the floor (DESIGN: 0.15-0.20 m).
    upper_top_z_m: tuple[float, float] = (0.16, 0.20)
    #: Smallest clearance between the upper and the floor (chosen: the fixture must not touch z=0).
    upper_floor_clearance_m: float = 0.010
    #: Height of the sole tray surface (DESIGN: tread at about z = 0.02 m).
    sole_tray_z_m: float = 0.02

    # --- hand-eye calibration error (applied by the scanner, datasets/world/scanner.py) ------------
    #: Per-axis std of the calibration translation error (chosen, FACTS [Robots]: accuracy 0.2-2 mm).
    calib_trans_std_m: float = 0.2e-3
    #: Per-axis std of the calibration rotation error, degrees (chosen).
    calib_rot_std_deg: float = 0.1

    def __post_init__(self) -> None:
        from gluecell.datasets.errors import WorldParamError

        ranges = {
            "size_range_eu": self.size_range_eu,
            "leather_thickness_m": self.leather_thickness_m,
            "sole_scale_error": self.sole_scale_error,
            "press_pressure_pa": self.press_pressure_pa,
            "upper_top_z_m": self.upper_top_z_m,
        }
        for mat in ("eva", "rubber", "pu", "tpu"):
            ranges[f"{mat}_youngs_pa"] = getattr(self, f"{mat}_youngs_pa")
            ranges[f"{mat}_poisson"] = getattr(self, f"{mat}_poisson")
        for key, (lo, hi) in ranges.items():
            if not (lo <= hi):
                raise WorldParamError(f"WorldConfig.{key}: low {lo} > high {hi}", key=key, value=(lo, hi))
        lo, hi = self.size_range_eu
        if lo < SIZE_RANGE_EU[0] or hi > SIZE_RANGE_EU[1]:
            raise WorldParamError(
                f"WorldConfig.size_range_eu {self.size_range_eu} must lie within {SIZE_RANGE_EU}", key="size_range_eu"
            )
        if self.n_perimeter < 64:
            raise WorldParamError(f"WorldConfig.n_perimeter must be >= 64, got {self.n_perimeter}", key="n_perimeter")
        for mat in ("eva", "rubber", "pu", "tpu"):
            nu_lo, nu_hi = getattr(self, f"{mat}_poisson")
            if nu_lo < 0.0 or nu_hi >= 0.5:
                raise WorldParamError(f"WorldConfig.{mat}_poisson must lie in [0, 0.5)", key=f"{mat}_poisson")
