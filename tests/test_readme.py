"""The README's promises: its two commands, and the CI script running exactly its test command."""

from __future__ import annotations

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    first_screen = "\n".join(text.splitlines()[:60])
    return re.findall(r"```(?:bash|sh)\n(.*?)\n```", first_screen, flags=re.S)


def test_first_screen_has_the_main_job_and_the_test_command():
    commands = _commands()
    assert len(commands) >= 2, "the README's first screen must show two commands"
    assert "strongcollapse run strong-collapse" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert _commands()[1].strip() in [line.strip() for line in ci]


def test_the_spectrum_example_runs_from_outside_the_package(tmp_path):
    """The README's "Adding a spectrum" code, run as user code, then used by theory and simulation."""
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Adding a spectrum") :]
    example = re.search(r"```python\n(.*?)\n```", section, flags=re.S).group(1)
    script = (
        example
        + """
import strongcollapse
from analytic import linear as model_a
from strongcollapse.simulate import linear
strongcollapse.enable_x64()
theory = float(model_a.test_error(*problem.arrays(), n=400, p=0.1, lam=0.01, sigma1=0.1).total)
sim = linear(0, *problem.arrays(), n=400, p=0.1, lam=0.01, sigma1=0.1, trials=200)
assert abs(float(sim.mean) - theory) <= 4 * float(sim.sem) + 0.03 * theory, (float(sim.mean), theory)
print("ok")
"""
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        timeout=300,
    )
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr
