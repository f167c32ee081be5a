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
