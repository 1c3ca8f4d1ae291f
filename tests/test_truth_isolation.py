"""Ground truth stays on its side (DESIGN.md): pipeline packages never import the world's truth.

Two checks: a static one over every import statement (also those inside functions), and a
dynamic one that imports every pipeline module in a fresh interpreter and looks at sys.modules.
The one carve-out is the simulated cell (``cell/sim/``), which plays the actual system; the bench
(``cell/bench/``), the evaluator that compares pipeline output with truth, reaches the world only through it
(``cell/sim/world.py``, ``cell/sim/press.py``).
"""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ("perception", "deformation", "pathplan", "quality", "cell")
TRUTH = "gluecell.datasets.world"


def _exempt(rel: Path) -> bool:
    return rel.parts[:2] == ("cell", "sim")


def _pipeline_files():
    for pkg in PIPELINE:
        for f in sorted((ROOT / pkg).rglob("*.py")):
            rel = f.relative_to(ROOT)
            if not _exempt(rel):
                yield rel


def _module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(["gluecell", *parts])


def _imports(rel: Path):
    tree = ast.parse((ROOT / rel).read_text(), filename=str(rel))
    pkg = _module_name(rel).split(".") if rel.name == "__init__.py" else _module_name(rel).split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = pkg[: len(pkg) - node.level + 1] if node.level else []
            mod = ".".join([*base, node.module] if node.module else base)
            yield mod
            yield from (f"{mod}.{a.name}" for a in node.names)


def test_static_no_pipeline_file_imports_world_truth():
    offenders = [
        f"{rel}: {name}" for rel in _pipeline_files() for name in _imports(rel)
        if name == TRUTH or name.startswith(TRUTH + ".") or name.startswith("datasets.world")
    ]  # fmt: skip
    assert offenders == []


def test_static_check_catches_a_violation(tmp_path, monkeypatch):
    """The checker itself must see a lazy absolute import and a relative one."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "quality").mkdir()
    (tmp_path / "quality" / "probe.py").write_text(
        "def f():\n    from gluecell.datasets.world import make_pair\n    from ..datasets.world import pair\n"
    )
    names = list(_imports(Path("quality/probe.py")))
    assert "gluecell.datasets.world.make_pair" in names
    assert "gluecell.datasets.world.pair" in names


def test_dynamic_importing_pipeline_modules_loads_no_truth():
    # a __main__ module runs its program on import: its imports are still checked statically
    modules = [_module_name(rel) for rel in _pipeline_files() if rel.name != "__main__.py"]
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}:\n"
        "    importlib.import_module(m)\n"
        f"print(sorted(k for k in sys.modules if k.startswith({TRUTH!r})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]"
    assert len(modules) >= 3
