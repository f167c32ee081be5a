"""Every experiment: a small smoke run in the fast tier, its --quick form (with agreement) in slow.

The fast tier runs each Strong Model Collapse experiment at a handful of cells and trials: it
writes its CSVs, figure and meta, and its figure redraws from the CSVs alone. The `--quick` forms,
where every cell must agree with theory, and the claims measured in simulation, run in the slow
tier (`python -m pytest -m slow`, run by CI after the fast tier). strong-collapse --quick also runs
in the fast tier, as a real process with resume (test_cli.py).
"""

from __future__ import annotations

import csv
import json

import pytest

from strongcollapse.orchestration.cli import main
from strongcollapse.orchestration.registry import experiments

# A few cells and trials each: enough to exercise every code path of run and draw.
SMOKE = {
    "width": ["d=40", "n=20", "trials=6", "psi=[0.5,2.0]", "peak_psi=[0.9,1.1]", "p=[0.0,0.5]", "c2=[1.0]"],
    "collapse-gap": ["trials=6"] + [f"panels.{i}.psi=[0.5,2.0]" for i in range(3)] + [f"panels.{i}.p=[0.5]" for i in range(3)],
    "pareto": ["d=40", "n=20", "trials=4", "psi=[0.5,2.0]", "p=[0.1]", "c2=[0.1,1.0]", 'quality_names=["high","low"]'],
    "scaling": ["d=60", "trials=4", "p=[0.0,0.1]", "curve_points=8", "columns.0.n=[10,20]", "columns.1.n=[10,1000]", "columns.2.n=[10,1000]"],
    "scaling-width": ["d=60", "trials=4", "m=[2,8,32]", "p=[0.0,0.1]"],
}


@pytest.mark.parametrize("name", sorted(SMOKE))
def test_smoke_run_writes_everything_and_redraws_from_the_csv(name, tmp_path, capsys):
    out = tmp_path / name
    sets = [arg for s in SMOKE[name] for arg in ("--set", s)]
    assert main(["run", name, "--quick", "--out", str(out), *sets]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["agreement"]["cells"] > 0 and meta["convergence"]["all_converged"]
    for file in meta["files"]:
        assert (out / file).stat().st_size > 0, file
    assert "nan" not in (out / "results.csv").read_text().lower()
    figure = out / f"{name}.png"
    figure.unlink()
    assert main(["plot", str(out)]) == 0 and figure.stat().st_size > 10_000


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(set(experiments()) - {"strong-collapse"}))
def test_quick_experiment(name, tmp_path, capsys):
    out = tmp_path / name
    assert main(["run", name, "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "(all within)" in printed, printed
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["agreement"]["ok"] and meta["convergence"]["all_converged"]
    for file in meta["files"]:
        assert (out / file).stat().st_size > 0, file
    text = (out / "results.csv").read_text()
    assert "np." not in text and "nan" not in text.lower()  # plain numbers, e.g. 0.1, never np.float64(0.1)
    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) > 0 and all(row["trials"] for row in rows)


@pytest.mark.slow
def test_width_peaks_are_located_by_theory_and_simulation(tmp_path, capsys):
    """The quick `width` run reports a theory and a simulated peak for every λ > 0 cell, and the
    theory's peak height grows with p (synthetic data raises the double-descent peak)."""
    out = tmp_path / "width"
    assert main(["run", "width", "--quick", "--out", str(out)]) == 0
    capsys.readouterr()
    peaks = [p for p in json.loads((out / "meta.json").read_text())["peaks"] if p["lam"] > 0]
    assert peaks and all(p["sim_low"] <= p["sim_m"] <= p["sim_high"] for p in peaks)
    # Theory's peak inside the simulated 5-95% interval, widened by one step of the quick width grid
    # (ψ steps of 0.1 at n = 40: 4 widths), the resolution the simulation has.
    step = 4.0
    assert all(p["sim_low"] - step <= p["theory_m"] <= p["sim_high"] + step for p in peaks), peaks
    for c2 in {p["c2"] for p in peaks}:
        heights = [p["theory_error"] for p in sorted(peaks, key=lambda p: p["p"]) if p["c2"] == c2]
        assert all(b > a for a, b in zip(heights, heights[1:])), heights


@pytest.mark.slow
def test_collapse_gap_claims_hold_in_simulation(tmp_path, capsys):
    """Strong Model Collapse, Sec. 4, measured (not only predicted), from the quick `collapse-gap` run:

    (ii) ridgeless, the gap grows with ψ below the threshold; (iii) above it, it falls towards a
    positive limit; and with λ > 0 on a power law, mixing beats real-only data at small width
    (THEORY.md §5). Every comparison allows 4 s.e. of the simulated gaps involved.
    """
    out = tmp_path / "gap"
    # 256 trials, not the quick 64: gaps below the threshold must be resolved to 4 s.e. (±25% at ψ = 0.65).
    assert main(["run", "collapse-gap", "--quick", "--set", "trials=256", "--out", str(out)]) == 0
    capsys.readouterr()
    with (out / "results.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    for panel in {r["panel"] for r in rows}:
        for p in {r["p"] for r in rows if r["panel"] == panel}:
            cells = sorted(
                (r for r in rows if r["panel"] == panel and r["p"] == p), key=lambda r: float(r["psi"])
            )
            gap = [float(r["sim_gap"]) for r in cells]
            sem = [float(r["sim_gap_sem"]) for r in cells]
            psi = [float(r["psi"]) for r in cells]
            if float(cells[0]["lam"]) == 0:
                below = [i for i, x in enumerate(psi) if x < 1]
                above = [i for i, x in enumerate(psi) if x > 1]

                def tol(i: int, j: int) -> float:
                    return 4 * (sem[i] + sem[j])

                # No significant step against the claim, and a significant move in its direction
                # (near the pole the noise is large, so the move is judged where it is resolved).
                assert all(gap[j] - gap[i] > -tol(i, j) for i, j in zip(below, below[1:])), (panel, p, gap)
                assert max(gap[j] - gap[below[0]] - tol(below[0], j) for j in below[1:]) > 0, (panel, p, gap)
                assert all(gap[i] - gap[j] > -tol(i, j) for i, j in zip(above, above[1:])), (panel, p, gap)
                assert max(gap[i] - gap[above[-1]] - tol(i, above[-1]) for i in above[:-1]) > 0, (
                    panel,
                    p,
                    gap,
                )
                assert gap[above[-1]] > 4 * sem[above[-1]]  # still positive at ψ = 10
            else:
                assert min(g + 4 * s for g, s in zip(gap, sem)) < 0, (panel, p, gap)  # mixing helps
