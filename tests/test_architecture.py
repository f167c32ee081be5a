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


# The layers, bottom first (README "Architecture"). A module may import its own layer and the ones
# below it, never one above; theory and simulation share a rank and never import each other.
LAYERS = {
    "strongcollapse.vocabulary": 0,
    "strongcollapse": 0,  # the package __init__ re-exports the vocabulary only
    "analytic": 1,
    "strongcollapse.simulate": 1,
    "strongcollapse.analysis": 2,
    "strongcollapse.bench": 3,
    "strongcollapse.orchestration": 4,
    "strongcollapse.__main__": 4,
    "experiments": 5,
}


def _layer(module: str) -> tuple[str, int] | None:
    """The most specific layer a dotted module name belongs to (None: not ours, e.g. numpy)."""
    best = None
    for prefix, rank in LAYERS.items():
        if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, rank)
    return best


def _module_name(relative: str) -> str:
    parts = list(pathlib.PurePath(relative).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def test_every_import_points_down_the_layers():
    checked = 0
    for folder in ("strongcollapse", "analytic", "experiments"):
        for path, names in _imports(ROOT / folder).items():
            own = _layer(_module_name(path))
            assert own is not None, f"{path} is in no layer of LAYERS"
            for name in names:
                target = _layer(name)
                if target is None:
                    continue
                checked += 1
                assert target[1] <= own[1], f"{path} ({own[0]}) imports {name} from the higher layer {target[0]}"
    assert checked > 100  # the walk really saw the package's imports


def test_the_layer_rule_catches_an_upward_import():
    assert _layer("strongcollapse.orchestration.cli") == ("strongcollapse.orchestration", 4)
    assert _layer("experiments.strong_model_collapse.width")[1] > _layer("strongcollapse.orchestration.registry")[1]
    assert _layer("strongcollapse.vocabulary.problem")[1] < _layer("strongcollapse.simulate.engine")[1]


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
