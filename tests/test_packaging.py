"""pyproject lists every subpackage, and the console script answers fast without heavy imports."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD = ("core", "perception", "deformation", "pathplan", "quality", "cell", "datasets")


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        "gluecell." + ".".join(init.parent.relative_to(ROOT).parts)
        for top in CARD
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert listed - found == set(), "pyproject lists packages that have no __init__.py"


def test_cli_help_is_fast_and_imports_no_heavy_library():
    code = (
        "import sys; from gluecell.cell.cli import build_parser; build_parser().format_help();"
        "print(sorted(m for m in ('open3d','torch','pyrealsense2','roslibpy','trimesh') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
