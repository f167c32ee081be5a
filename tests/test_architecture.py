"""The house rules of DESIGN.md §1, checked by parsing imports (stdlib ast)."""

from __future__ import annotations

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(folder: pathlib.Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in folder.rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_analytic_never_imports_the_simulation_randomness_or_plotting():
    for path, names in _imports(ROOT / "analytic").items():
        bad = {n for n in names if n.startswith(("strongcollapse.simulate", "matplotlib", "jax.random"))}
        assert not bad, f"{path} imports {bad}"


def test_simulation_never_imports_the_theory():
    for path, names in _imports(ROOT / "strongcollapse" / "simulate").items():
        bad = {n for n in names if n == "analytic" or n.startswith("analytic.")}
        assert not bad, f"{path} imports {bad}"


def test_package_import_has_no_global_side_effects():
    import subprocess
    import sys

    code = (
        "import jax, strongcollapse, analytic.linear, strongcollapse.simulate; "
        "print(jax.config.read('jax_enable_x64'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
