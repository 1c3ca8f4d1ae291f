"""gluecell.pathplan: bond regions -> spray paths -> robot programs (see DESIGN.md and issue 5).

Pipeline (noether-style stages built from config, :mod:`.stages`): a bond region from the cloud and the
bite line (:mod:`.region`), planners (:mod:`.planners`: contour offsets, raster fill), path modifiers
(:mod:`.modifiers`), a spray deposition model that predicts film, coverage and glue beyond the line
(:mod:`.deposition`, tuned by :mod:`.tuning`), UR10e kinematics (:mod:`.kinematics`) and time
parametrisation (:mod:`.timing`). :func:`plan_pair` runs all of it for one pair.
"""

from .errors import (
    CoverageError,
    KinematicsError,
    OrientationError,
    PathplanError,
    RegionError,
    StageError,
    UnreachableError,
)
from .pipeline import PairPlan, PartPlan, PathplanConfig, plan_pair, plan_part
from .stages import build_pipeline, build_stage, registered

__all__ = [
    "CoverageError",
    "KinematicsError",
    "OrientationError",
    "PathplanError",
    "RegionError",
    "StageError",
    "UnreachableError",
    "PairPlan",
    "PartPlan",
    "PathplanConfig",
    "plan_pair",
    "plan_part",
    "build_pipeline",
    "build_stage",
    "registered",
]
