"""``gluecell bench``: world timing + a stage section, as a table and JSON."""

import json
import subprocess
import sys

#: The perception bench on fresh world pairs must see the part within this mean surface error (mm).
SURFACE_MEAN_TOL_MM = 1.0


def test_bench_cli_writes_json_with_world_and_perception_sections(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "gluecell.cell.cli", "bench", "--n", "3", "--quick", "--only", "perception",
           "--out", str(out)]  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    data = json.loads(out.read_text())
    assert data["format"] == "gluecell.bench/1" and data["errors"] == {}
    world = data["sections"]["world"]
    assert world["world_samples"] == 3 and world["world_gen_wall_per_sample_s"] > 0
    perc = data["sections"]["perception"]
    # single low views of dark leather may split through dropouts (perception's known limit); never more
    assert perc["scan_failures"] <= 1
    assert 0 < perc["scan_surface_error_mean_mm"] < SURFACE_MEAN_TOL_MM
    assert perc["scan_single_view_p95_ms"] >= perc["scan_single_view_p50_ms"] > 0
    assert "world_gen_per_sample_p50_s" in res.stdout  # the table is printed
    assert "deformation" not in data["sections"]  # --only is honoured
