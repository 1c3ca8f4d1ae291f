"""RealSense SDK post-processing filters, configured per camera by a frozen dataclass.

The chain follows Intel's recommended order (white paper "Depth Post-Processing for Intel
RealSense D400 Depth Cameras", 2018): decimation -> threshold -> depth-to-disparity -> spatial ->
temporal -> disparity-to-depth -> hole filling. Defaults are the SDK's own defaults (spatial
alpha 0.5 / delta 20 / 2 iterations, temporal alpha 0.4 / delta 20 / persistence 3), except:

- decimation 1 (off): the bite line needs the full lateral resolution at 0.2-0.5 m range;
- threshold 0.07-1.0 m: D405's minimum range is ~70 mm (FACTS.md) and the stations are within
  about 1 m of any fixed camera, so farther returns are background;
- hole filling off: it invents depth at silhouette edges, exactly where the feather edge is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gluecell.core.errors import ConfigError

__all__ = ["FilterConfig", "FilterChain", "build_filters"]

#: hole_filling_mode values of the SDK: fill_from_left, farest_from_around, nearest_from_around.
HOLE_FILLING_MODES = (0, 1, 2)


@dataclass(frozen=True)
class FilterConfig:
    """Post-processing filter settings for one camera (SDK option names in brackets).

    Attributes:
        decimation: downsampling factor 1-8 [filter_magnitude]; 1 disables the filter.
        threshold: enable the range threshold filter.
        min_depth_m / max_depth_m: kept depth range, metres [min_distance, max_distance].
        disparity_domain: run spatial/temporal on disparity (recommended for stereo depth).
        spatial: enable the edge-preserving spatial filter.
        spatial_magnitude: iterations 1-5; spatial_alpha: 0.25-1; spatial_delta: 1-50 (depth steps);
        spatial_holes_fill: 0-5 (0 = off).
        temporal: enable the temporal filter (needs several consecutive frames to act).
        temporal_alpha: 0-1; temporal_delta: 1-100; temporal_persistence: 0-8.
        hole_filling: enable the hole-filling filter; hole_filling_mode: 0, 1 or 2.
    """

    decimation: int = 1
    threshold: bool = True
    min_depth_m: float = 0.07
    max_depth_m: float = 1.0
    disparity_domain: bool = True
    spatial: bool = True
    spatial_magnitude: int = 2
    spatial_alpha: float = 0.5
    spatial_delta: int = 20
    spatial_holes_fill: int = 0
    temporal: bool = True
    temporal_alpha: float = 0.4
    temporal_delta: int = 20
    temporal_persistence: int = 3
    hole_filling: bool = False
    hole_filling_mode: int = 1

    def __post_init__(self) -> None:
        checks = [
            ("decimation", 1 <= self.decimation <= 8, "1..8"),
            ("min_depth_m", 0.0 <= self.min_depth_m < self.max_depth_m, "0 <= min_depth_m < max_depth_m"),
            ("max_depth_m", 0.0 < self.max_depth_m <= 16.0, "0 < max_depth_m <= 16"),
            ("spatial_magnitude", 1 <= self.spatial_magnitude <= 5, "1..5"),
            ("spatial_alpha", 0.25 <= self.spatial_alpha <= 1.0, "0.25..1"),
            ("spatial_delta", 1 <= self.spatial_delta <= 50, "1..50"),
            ("spatial_holes_fill", 0 <= self.spatial_holes_fill <= 5, "0..5"),
            ("temporal_alpha", 0.0 <= self.temporal_alpha <= 1.0, "0..1"),
            ("temporal_delta", 1 <= self.temporal_delta <= 100, "1..100"),
            ("temporal_persistence", 0 <= self.temporal_persistence <= 8, "0..8"),
            ("hole_filling_mode", self.hole_filling_mode in HOLE_FILLING_MODES, "0, 1 or 2"),
        ]
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigError(f"filters.{name}: {getattr(self, name)!r} is outside {allowed}", key=name)

    def enabled(self) -> list[str]:
        """Names of the filters this config runs, in order."""
        names = []
        if self.decimation > 1:
            names.append("decimation")
        if self.threshold:
            names.append("threshold")
        if self.spatial:
            names.append("spatial")
        if self.temporal:
            names.append("temporal")
        if self.hole_filling:
            names.append("hole_filling")
        return names


class FilterChain:
    """Stateful filter instances for one camera (the temporal filter remembers past frames)."""

    def __init__(self, filters: list[tuple[str, Any]]) -> None:
        self.filters = filters

    @property
    def names(self) -> list[str]:
        """Names of the SDK filters, in the order they run."""
        return [n for n, _ in self.filters]

    def process(self, depth_frame: Any) -> Any:
        """Run every filter on a ``pyrealsense2.depth_frame``; returns the filtered depth frame."""
        frame = depth_frame
        for _, flt in self.filters:
            frame = flt.process(frame)
        return frame.as_depth_frame()


def build_filters(cfg: FilterConfig) -> FilterChain:
    """Create the SDK filter objects for ``cfg`` (imports ``pyrealsense2``)."""
    import pyrealsense2 as rs

    out: list[tuple[str, Any]] = []
    if cfg.decimation > 1:
        dec = rs.decimation_filter()
        dec.set_option(rs.option.filter_magnitude, float(cfg.decimation))
        out.append(("decimation", dec))
    if cfg.threshold:
        thr = rs.threshold_filter(float(cfg.min_depth_m), float(cfg.max_depth_m))
        out.append(("threshold", thr))
    use_disp = cfg.disparity_domain and (cfg.spatial or cfg.temporal)
    if use_disp:
        out.append(("depth_to_disparity", rs.disparity_transform(True)))
    if cfg.spatial:
        spa = rs.spatial_filter()
        spa.set_option(rs.option.filter_magnitude, float(cfg.spatial_magnitude))
        spa.set_option(rs.option.filter_smooth_alpha, float(cfg.spatial_alpha))
        spa.set_option(rs.option.filter_smooth_delta, float(cfg.spatial_delta))
        spa.set_option(rs.option.holes_fill, float(cfg.spatial_holes_fill))
        out.append(("spatial", spa))
    if cfg.temporal:
        tmp = rs.temporal_filter()
        tmp.set_option(rs.option.filter_smooth_alpha, float(cfg.temporal_alpha))
        tmp.set_option(rs.option.filter_smooth_delta, float(cfg.temporal_delta))
        tmp.set_option(rs.option.holes_fill, float(cfg.temporal_persistence))
        out.append(("temporal", tmp))
    if use_disp:
        out.append(("disparity_to_depth", rs.disparity_transform(False)))
    if cfg.hole_filling:
        hole = rs.hole_filling_filter()
        hole.set_option(rs.option.holes_fill, float(cfg.hole_filling_mode))
        out.append(("hole_filling", hole))
    return FilterChain(out)
