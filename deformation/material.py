"""Sole materials and the upper's contact compliance (values from FACTS.md or documented here).

Young's modulus ``E`` and Poisson's ratio ``nu`` per sole material, each with the spread used for the
prediction's uncertainty. Sources (FACTS.md, "Sole materials"):

- EVA (expanded foam): foams about 0.27-0.30 MPa in compression, Poisson's ratio near 0. We take
  E = 0.3 MPa, nu = 0.05 (spread 0.05: "near 0").
- Rubber / TR outsoles 40-85 Shore A (typical 55-75); 60 A is 2-6 MPa, Poisson 0.45-0.5:
  E = 4 MPa, nu = 0.48 (spread 0.02).
- PU (microcellular, 0.4-0.8 g/cm^3): "PU at 70 A quoted 5-12 MPa (weak)": E = 8 MPa. Poisson's ratio of a
  microcellular elastomer is not in FACTS.md; chosen nu = 0.35 +- 0.1 (between a foam and a solid elastomer).
- TPU: not in FACTS.md. A solid thermoplastic elastomer, harder than TR (85-95 A); chosen E = 20 MPa
  (an extrapolation of the Shore A conversions) and nu = 0.48 +- 0.02 (solid elastomer band of FACTS.md).

The upper is a Winkler foundation: lasted leather of thickness ``t_u`` (FACTS.md: 1.2-2.0 mm, we take
1.6 mm) over a rigid last, with through-thickness modulus ``E_u``. That modulus is not in FACTS.md; chosen
2 MPa (leather plus lining compressed across its thickness is far softer than leather in tension).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import DeformationError

__all__ = ["Material", "MATERIALS", "UpperContact", "get_material", "UNKNOWN_MATERIAL"]


@dataclass(frozen=True)
class Material:
    """Linear-elastic sole material.

    Attributes:
        name: registry name.
        E: Young's modulus, Pa.
        nu: Poisson's ratio.
        nu_sigma: 1-sigma spread of ``nu`` (used for the bite-line uncertainty).
    """

    name: str
    E: float
    nu: float
    nu_sigma: float


MATERIALS: dict[str, Material] = {
    "eva": Material("eva", E=0.3e6, nu=0.05, nu_sigma=0.05),
    "rubber": Material("rubber", E=4.0e6, nu=0.48, nu_sigma=0.02),
    "pu": Material("pu", E=8.0e6, nu=0.35, nu_sigma=0.10),
    "tpu": Material("tpu", E=20.0e6, nu=0.48, nu_sigma=0.02),
}

#: Used when the cell does not know the sole material: mid-range values, wide spread.
UNKNOWN_MATERIAL = Material("unknown", E=4.0e6, nu=0.30, nu_sigma=0.18)


def get_material(name: str | Material | None) -> Material:
    """The material called ``name`` (case-insensitive); ``None`` or "unknown" gives :data:`UNKNOWN_MATERIAL`.

    A :class:`Material` is returned as it is (a plant that measured its sole's modulus passes it directly).
    """
    if isinstance(name, Material):
        return name
    if name is None or name.lower() == "unknown":
        return UNKNOWN_MATERIAL
    try:
        return MATERIALS[name.lower()]
    except KeyError:
        raise DeformationError(
            f"unknown sole material {name!r}; allowed: {', '.join(MATERIALS)} or unknown", stage="deformation"
        ) from None


@dataclass(frozen=True)
class UpperContact:
    """The lasted upper as an elastic foundation under the sole's rim.

    Attributes:
        E_u: through-thickness modulus of leather + lining, Pa (chosen, see module docstring).
        t_u: upper thickness, m (FACTS.md 1.2-2.0 mm).
    """

    E_u: float = 2.0e6
    t_u: float = 1.6e-3

    @property
    def k_f(self) -> float:
        """Foundation stiffness per unit contact area, Pa/m (= N/m^3): pressure per metre of indentation."""
        return self.E_u / self.t_u
