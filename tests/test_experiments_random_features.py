"""The random-feature and covariate-shift experiments: run, agree with theory, and show their claims.

Fast tier: each experiment in a reduced form (``--set`` overrides of its ``--quick`` config). The
random-feature runs keep the quick grid (d = 50, n = 100, the quick widths) and a multiple of the
chunk size in tasks, so they reuse one compiled simulation (ReLU) with each other and with the
quick runs of tests/test_experiments.py. Slow tier: the full ``--quick`` runs.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from strongcollapse.orchestration.cli import main
from strongcollapse.orchestration.tables import Table

RF_FAST = ["--set", 'activations=["relu"]', "--set", "trials=24"]


def _run(name: str, out, *sets: str) -> tuple[dict, Table, Table]:
    assert main(["run", name, "--quick", "--out", str(out), *sets]) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished"
    assert meta["agreement"]["ok"], meta["agreement"]
    assert meta["convergence"]["all_converged"], meta["convergence"]
    for file in meta["files"]:
        assert (out / file).stat().st_size > 0, file
    text = (out / "results.csv").read_text()
    assert "nan" not in text.lower() and "np." not in text
    return meta, Table.read_csv(out / "results.csv"), Table.read_csv(out / "curves.csv")


def test_random_features_peak_at_threshold_and_collapse_at_every_width(tmp_path, capsys):
    """THEORY_RF §7, §11: the ReLU theory line peaks at m = n, falls towards the kernel limit above it;
    synthetic data raise the simulated error at every width; the widest model stays above the
    kernel-limit level and far below the error just above the threshold."""
    meta, results, curves = _run("random-features", tmp_path / "rf", *RF_FAST, "--set", "p=[0,0.5]")
    assert "(all within)" in capsys.readouterr().out
    assert results.unique("activation") == ["relu"] and len(results) == 2 * 7
    for p in (0.0, 0.5):
        line = curves.where(p=p, series="theory")
        x, y = line["x"], line["y"]
        peak = float(x[np.argmax(np.where(np.isfinite(y), y, np.inf))])
        assert abs(np.log(peak)) < 0.02, peak  # the only threshold: m = n
        kernel = float(curves.where(p=p, series="kernel_limit")["y"][0])
        assert kernel < y[-1] < 1.2 * kernel  # m/n = 50 approaches the kernel limit from above
        sim = results.where(p=p)
        wide = sim.where(m=500)
        assert float(wide["sim_mean"][0]) > kernel
    clean, mixed = results.where(p=0.0), results.where(p=0.5)
    diff = mixed["sim_mean"] - clean["sim_mean"]
    assert np.all(diff > 0), diff  # synthetic data hurt at every simulated width
    assert np.all(mixed["theory"] > clean["theory"])
    # Larger models mitigate above m = n: ψ = 5 well below ψ = 1.25, in simulation.
    at = {int(m): (mu, se) for m, mu, se in zip(mixed["m"], mixed["sim_mean"], mixed["sim_sem"])}
    assert at[125][0] - at[500][0] > 4 * np.hypot(at[125][1], at[500][1])
    assert meta["kernel_limits"] and all(k["kernel_limit"] > 0 for k in meta["kernel_limits"])


def test_random_features_gap_rises_below_threshold_and_stays_positive_above(tmp_path, capsys):
    """THEORY_RF §11 (ii)-(iii), ReLU: the theory gap increases in m below n and decreases above, to a
    positive kernel-limit gap; measured: the gap at m = n/2 is p²c² + Δσ² (= 0.5), it is larger
    near the threshold than at small width (amplification), smaller at m = 5n than at 1.25n
    (mitigation), and still positive at m = 5n."""
    meta, results, curves = _run("random-features-gap", tmp_path / "gap", *RF_FAST, "--set", "p=[0.5]")
    assert "(all within)" in capsys.readouterr().out
    cells = results.where(p=0.5)
    n = int(cells["n"][0])
    m, th = cells["m"], cells["theory_gap"]
    assert np.all(np.diff(th[m < n]) > 0) and np.all(np.diff(th[m > n]) < 0)
    kernel = float(curves.where(p=0.5, series="kernel_gap")["y"][0])
    assert 0 < kernel < th[-1]
    gap = {int(k): (g, s) for k, g, s in zip(m, cells["sim_gap"], cells["sim_gap_sem"])}
    assert abs(gap[50][0] - 0.5) < 4 * gap[50][1]  # p²c² + Δσ² at m = n/2, any activation
    for low, high in ((10, 80), (500, 125)):  # amplified below, mitigated above
        assert gap[high][0] - gap[low][0] > 2 * np.hypot(gap[high][1], gap[low][1]), (low, high, gap)
    assert gap[500][0] > 3 * gap[500][1]  # never removed
    summary = meta["gaps"][0]
    assert summary["theory_rises_below"] and summary["theory_falls_above"] and summary["kernel_gap"] > 0
    assert np.all(results.where(p=0.0)["sim_gap"] == 0)


def test_covariate_shift_plateaus_move_as_predicted(tmp_path, capsys):
    """THEORY_SHIFT_GENERATIONS §1.6: the n → ∞ plateau is (ps/(1−p+ps))²c² for Σ2 = sΣ1, above the
    no-shift p²c² for s > 1 (and for a flatter synthetic power law), below it otherwise; the
    simulated error at n = 10⁴d sits on the shifted plateau, many s.e. away from the no-shift one."""
    sets = ["--set", "n_over_d=[2,20,1000,10000]", "--set", "trials=50"]
    meta, results, curves = _run("covariate-shift", tmp_path / "cs", *sets)
    assert "(all within)" in capsys.readouterr().out
    p, c2 = float(results["p"][0]), float(results["c2"][0])
    base = float(results["plateau_no_shift"][0])
    assert base == pytest.approx(p**2 * c2, rel=1e-9)
    expected_side = {"Σ2 = 0.25·Σ1": -1, "Σ2 = 3·Σ1": 1, "Σ2 = 10·Σ1": 1}
    for shift in results.unique("shift"):
        cells = results.where(shift=shift)
        level = float(cells["plateau"][0])
        if shift in expected_side:
            s = float(shift.split("= ")[1].split("·")[0])
            assert level == pytest.approx((p * s / (1 - p + p * s)) ** 2 * c2, rel=1e-9)
        far = cells.where(n=float(np.max(cells["n"])))
        mean, sem = float(far["sim_mean"][0]), float(far["sim_sem"][0])
        assert abs(mean - level) <= 4 * sem + 0.02 * level, (shift, mean, level)
        side = expected_side.get(shift, 1 if "beta = 1)" in shift else -1)
        assert side * (mean - base) > 10 * sem, (shift, mean, base)
    assert {r["shift"] for r in meta["plateaus"]} == set(results.unique("shift"))
    assert len(curves.where(series="no_shift_plateau")) == len(results.unique("panel"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["random-features", "random-features-gap", "covariate-shift"])
def test_quick_forms(name, tmp_path, capsys):
    """The full ``--quick`` forms, as a user runs them."""
    meta, results, _ = _run(name, tmp_path / name)
    assert "(all within)" in capsys.readouterr().out
    assert len(results) == meta["agreement"]["cells"] or name == "random-features-gap"
