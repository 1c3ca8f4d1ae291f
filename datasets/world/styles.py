"""Design data of the three style families of the synthetic world (nominal, not hidden).

Each :class:`StyleSpec` holds the last and sole *design* of one family for the base size EU 42
(last length 280 mm by the Paris point, FACTS.md "Lasts and sizes"). Grading to other sizes is done
in :mod:`gluecell.datasets.world.last`; which values grade and which are held is documented there and
in ``datasets/README.md``. Every number below is either from FACTS.md or chosen (and says why).
All lengths in metres.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["STYLES", "MATERIALS", "StyleSpec", "STYLE_SPECS", "style_spec"]

#: The style families of the world.
STYLES: tuple[str, ...] = ("sneaker", "court", "boot")
#: Sole materials, in the order used by ``StyleSpec.material_weights``.
MATERIALS: tuple[str, ...] = ("eva", "rubber", "pu", "tpu")


@dataclass(frozen=True)
class StyleSpec:
    """Nominal design of one style family (base size EU 42, right foot).

    Attributes:
        name: style family name.
        toe_spring_m: rise of the last bottom at the toe tip above the ball tread line (FACTS.md:
            stiff hiking boot ~15 mm, casual slip-on ~5 mm; held across sizes).
        heel_rise_m: rise of the last's heel seat above the ball tread line (heel-to-toe drop,
            FACTS.md bands 0-4 / 4-8 / 8-12 / >= 12 mm; held across sizes).
        feather_radius_m: radius of the last's feather edge (rounded for cup-sole shoes, near 90°
            for a board-lasted boot, FACTS.md "Feather edge"; the values are chosen).
        width_factor: bottom width relative to the base outline (chosen: sneakers and boots are
            made on roomier, flatter-bottomed lasts than a court shoe).
        crown_m: transverse convexity of the last bottom, centre below the feather edge (chosen,
            a typical 2-3 mm bottom crown).
        top_heights_m: height of the last's top ridge above its bottom at the spine stations
            ``last.SPINE_STATIONS`` (chosen from typical last profiles: toe box ~30 mm, instep
            ~65 mm, cone ~90 mm; a boot carries a shaft of ~130 mm (ankle boot, it must fit the
            0.15-0.20 m station height, DESIGN.md)).
        bulge_m: outward bulge of the last side above the feather edge at ``last.BULGE_STATIONS``
            (the side of a last overhangs its bottom: chosen, 0.5-4 mm).
        sidewall_heights_m: cup-sole sidewall height along the inner wall above the feather edge
            at the heel, the sides and the toe (FACTS.md: not public; chosen from typical cup soles).
        wall_thickness_m: sole sidewall thickness at the rim and at the base (chosen).
        tread_thickness_m: sole floor thickness, tread to footbed, under the ball (chosen).
        sole_toe_spring_ratio: fraction of the last's toe spring moulded into the free sole (the
            free sole is a little flatter and is bent onto the last when pressed; chosen 0.8, which
            keeps the bending strain at the rim below ~3 %).
        sole_crown_ratio: fraction of the last's bottom crown moulded into the footbed (chosen).
        material_weights: probability of each of ``MATERIALS`` for this style (chosen).
    """

    name: str
    toe_spring_m: float
    heel_rise_m: float
    feather_radius_m: float
    width_factor: float
    crown_m: float
    top_heights_m: tuple[float, float, float, float, float]
    bulge_m: tuple[float, float, float, float, float, float]
    sidewall_heights_m: tuple[float, float, float]
    wall_thickness_m: tuple[float, float]
    tread_thickness_m: float
    sole_toe_spring_ratio: float
    sole_crown_ratio: float
    material_weights: tuple[float, float, float, float]


STYLE_SPECS: dict[str, StyleSpec] = {
    "sneaker": StyleSpec(
        name="sneaker",
        toe_spring_m=0.010,
        heel_rise_m=0.010,
        feather_radius_m=0.005,
        width_factor=1.04,
        crown_m=0.0025,
        top_heights_m=(0.092, 0.085, 0.065, 0.045, 0.032),
        bulge_m=(0.003, 0.003, 0.002, 0.004, 0.0025, 0.0005),
        sidewall_heights_m=(0.018, 0.012, 0.015),
        wall_thickness_m=(0.003, 0.005),
        tread_thickness_m=0.012,
        sole_toe_spring_ratio=0.8,
        sole_crown_ratio=0.5,
        material_weights=(0.25, 0.45, 0.20, 0.10),
    ),
    "court": StyleSpec(
        name="court",
        toe_spring_m=0.008,
        heel_rise_m=0.006,
        feather_radius_m=0.004,
        width_factor=1.0,
        crown_m=0.002,
        top_heights_m=(0.090, 0.083, 0.063, 0.043, 0.030),
        bulge_m=(0.0025, 0.0025, 0.002, 0.0035, 0.002, 0.0005),
        sidewall_heights_m=(0.012, 0.008, 0.010),
        wall_thickness_m=(0.0025, 0.004),
        tread_thickness_m=0.010,
        sole_toe_spring_ratio=0.8,
        sole_crown_ratio=0.5,
        material_weights=(0.15, 0.45, 0.30, 0.10),
    ),
    "boot": StyleSpec(
        name="boot",
        toe_spring_m=0.015,
        heel_rise_m=0.022,
        feather_radius_m=0.001,
        width_factor=1.07,
        crown_m=0.002,
        top_heights_m=(0.130, 0.126, 0.095, 0.052, 0.034),
        bulge_m=(0.0035, 0.003, 0.002, 0.004, 0.0025, 0.0005),
        sidewall_heights_m=(0.014, 0.010, 0.012),
        wall_thickness_m=(0.0035, 0.006),
        tread_thickness_m=0.015,
        sole_toe_spring_ratio=0.8,
        sole_crown_ratio=0.5,
        material_weights=(0.05, 0.45, 0.25, 0.25),
    ),
}


def style_spec(style: str) -> StyleSpec:
    """The design of ``style``; raises :class:`WorldParamError` for an unknown style."""
    from gluecell.datasets.errors import WorldParamError

    try:
        return STYLE_SPECS[style]
    except (KeyError, TypeError):
        raise WorldParamError(
            f"unknown style {style!r}: choose one of {', '.join(STYLES)}", key="style", value=style
        ) from None
