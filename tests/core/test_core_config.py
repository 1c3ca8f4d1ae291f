"""Strict config loading: unknown keys and bad types are errors that name the key."""

import pytest

from gluecell.core.config import CellConfig, StationConfig, from_dict, load_config, to_dict
from gluecell.core.errors import ConfigError


def test_defaults_match_design_layout():
    cfg = load_config(CellConfig)
    assert cfg.upper.centre == (0.55, -0.20) and cfg.sole.centre == (0.55, 0.20)
    assert cfg.upper.half_extent == (0.20, 0.12) and cfg.upper.z_max == pytest.approx(0.30)


def test_toml_overrides_and_unknown_keys(tmp_path):
    p = tmp_path / "cell.toml"
    p.write_text("max_yaw_deg = 10\n[upper]\ncentre = [0.6, -0.25]\n")
    cfg = load_config(CellConfig, p)
    assert cfg.upper.centre == (0.6, -0.25) and cfg.max_yaw_deg == 10.0
    assert to_dict(cfg)["upper"]["centre"] == [0.6, -0.25]
    p.write_text("[upper]\ncenter = [0.6, -0.25]\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['center'\] in \[upper\]"):
        load_config(CellConfig, p)
    with pytest.raises(ConfigError, match="expected a number"):
        from_dict(StationConfig, {"z_max": "high"})
    with pytest.raises(ConfigError, match="expected 2 values"):
        from_dict(StationConfig, {"centre": [1, 2, 3]})
    p.write_text("[upper\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(CellConfig, p)
