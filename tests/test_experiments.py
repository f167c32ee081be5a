"""Every experiment in its --quick form: runs, writes its outputs, and agrees with theory.

(strong-collapse is also run as a real process in test_cli.py, with resume.)
"""

from __future__ import annotations

import csv
import json

import pytest

from experiments import EXPERIMENTS
from strongcollapse.cli import main


@pytest.mark.parametrize("name", sorted(set(EXPERIMENTS) - {"strong-collapse"}))
def test_quick_experiment(name, tmp_path, capsys):
    out = tmp_path / name
    assert main(["run", name, "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(all within)" in printed, printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["agreement"]["ok"] and meta["convergence"]["all_converged"]
    for file in meta["files"]:
        assert (out / file).stat().st_size > 0, file
    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 0 and all(row["trials"] for row in rows)


def test_width_peaks_are_located_by_theory_and_simulation(tmp_path, capsys):
    """The quick `width` run reports a theory and a simulated peak for every λ > 0 cell, and the
    theory's peak height grows with p (synthetic data raises the double-descent peak)."""
    out = tmp_path / "width"
    assert main(["run", "width", "--quick", "--out", str(out)]) == 0
    capsys.readouterr()
    peaks = [p for p in json.loads((out / "meta.json").read_text())["peaks"] if p["lam"] > 0]
    assert peaks and all(p["sim_low"] <= p["sim_m"] <= p["sim_high"] for p in peaks)
    for c2 in {p["c2"] for p in peaks}:
        heights = [p["theory_error"] for p in sorted(peaks, key=lambda p: p["p"]) if p["c2"] == c2]
        assert all(b > a for a, b in zip(heights, heights[1:])), heights
