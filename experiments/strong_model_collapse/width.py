"""Experiment ``width``: test error vs model size ψ = m/n at fixed n (random projections, Model B).

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 4 / Thm 2 and Fig. 3-4 (random
projections): at fixed n < d the error has a double-descent peak at the interpolation threshold
ψ = 1 (m = n); synthetic data raises it. Ridgeless the peak is a pole; with λ > 0 it is finite,
Θ(λ^-1/2), and sits slightly below m = n. THEORY.md §3.

Columns: two synthetic qualities c². Rows: ridgeless and λ > 0. Lines: the deterministic
equivalent; markers: simulation (nested widths: one S per trial, first m rows). The peak is
located by the theory (continuous in m) and by the simulation (refined grid maximum with a 5-95%
bootstrap interval over trials), and both are reported.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import strongcollapse.simulate as simulate
from analytic import random_projection as theory
from experiments.strong_model_collapse import PAPER
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.analysis.peaks import simulated_peak
from strongcollapse.orchestration.plotting import colors, legend_keys, new_figure, theory_and_simulation, threshold
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.validation import ParameterError, check_count, check_in_range, check_nonnegative

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 200,
    "n": 100,
    "spectrum": {"kind": "isotropic"},
    "source": 0.0,
    "corr": 0.0,
    "signal": 1.0,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "p": [0.0, 0.02, 0.1, 0.5],
    "c2": [0.25, 1.0],
    # λ > 0 row: large enough that the peak visibly leaves m = n (≈ 0.9n here), small enough to keep it.
    "lam": [0.0, 0.03],
    # Simulated widths as ψ = m/n; the ridgeless row skips |ψ − 1| < 0.1, where the pole's
    # heavy-tailed errors make a Monte Carlo mean meaningless (THEORY.md §5).
    "psi": [0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0],
    # Extra widths around the finite peak of the λ > 0 row, to locate it.
    "peak_psi": [0.8, 0.84, 0.86, 0.88, 0.9, 0.92, 0.94, 0.96, 0.98, 1.0, 1.03, 1.06],
    "trials": 300,
    "r0": 0.02,
}

QUICK: dict[str, Any] = {
    "d": 80,
    "n": 40,
    "trials": 48,
    "psi": [0.2, 0.5, 0.8, 1.25, 2.0, 5.0],
    "peak_psi": [0.8, 0.9, 1.0, 1.1],
}


def _widths(n: int, psis: Any, name: str) -> np.ndarray:
    psis = np.ravel(check_in_range(name, psis, 1.0 / n, 1e4))
    return np.unique(np.maximum(np.rint(psis * n), 1)).astype(np.int64)


def _curve(
    c2: float, lam: float, p: float, series: str, x: float, y: float, **bounds: float
) -> dict[str, Any]:
    """A ``curves.csv`` row: x is ψ = m/n; ``x_low``/``x_high`` bound a located peak (else empty)."""
    row = {"c2": c2, "lam": lam, "p": p, "series": series, "x": x, "y": y, "x_low": "", "x_high": ""}
    return row | bounds


def _setup(config: dict[str, Any]) -> tuple:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    n = int(check_count("n", config["n"], minimum=2))
    if n >= d:
        raise ParameterError(f"n must be < d = {d} for an interpolation peak at m = n, got {n}")
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    qualities = np.ravel(check_nonnegative("c2", config["c2"]))
    lams = np.ravel(check_nonnegative("lam", config["lam"]))
    trials = int(check_count("trials", config["trials"], minimum=2))
    s1, s2 = (float(check_nonnegative(k, config[k])) for k in ("sigma1", "sigma2"))
    r0 = float(check_nonnegative("r0", config["r0"]))
    main = _widths(n, config["psi"], "psi")
    peak_zone = _widths(n, config["peak_psi"], "peak_psi")
    dense = np.geomspace(main.min(), main.max(), 500)
    problems = [  # the spectrum (a file, maybe) with every quality, built once for validate and run
        Problem.build(
            config["spectrum"],
            d,
            source=config["source"],
            signal=config["signal"],
            c2=float(c2),
            corr=config["corr"],
        )
        for c2 in qualities
    ]
    return d, n, ps, qualities, problems, lams, trials, s1, s2, r0, main, peak_zone, dense


def validate(config: dict[str, Any]) -> None:
    """The whole config, every spectrum file included (the runner calls it first)."""
    _setup(config)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Theory + simulation over (quality, λ, p, width); peaks located both ways.

    ``curves.csv``: per (c², λ, p) the dense theory line (``theory``) and, for λ > 0, the theory's
    peak (``theory_peak``) and the simulated one with its 5-95% bootstrap interval (``sim_peak``).
    """
    d, n, ps, qualities, problems, lams, trials, s1, s2, r0, main, peak_zone, dense = _setup(config)
    report = Report(r_text=f"{r0:.0%} + 1/|n - min(m, d)|")
    peaks: list[dict[str, Any]] = []
    for c2, problem in zip(qualities, problems):
        args = problem.arrays()
        for lam in lams:
            widths = main[np.abs(main / n - 1) >= 0.1] if lam == 0 else np.union1d(main, peak_zone)
            sim = simulate.random_projection(
                ctx.seed,
                *args,
                n=n,
                m=widths[None, :],
                p=ps[:, None],
                lam=lam,
                sigma1=s1,
                sigma2=s2,
                trials=trials,
                **ctx.simulation(f"c²={c2:g} λ={lam:g}"),
            )
            th = theory.test_error(
                *args, n=n, m=widths[None, :], p=ps[:, None], lam=lam, sigma1=s1, sigma2=s2
            )
            report.solver(th)
            allowance = finite_size_allowance(n, np.minimum(widths, d), r0)
            report.compare(sim.mean, sim.sem, th.total, allowance)
            line = theory.test_error(
                *args, n=n, m=dense[None, :], p=ps[:, None], lam=lam, sigma1=s1, sigma2=s2
            ).total
            for i, p in enumerate(ps):
                report.curves.extend(
                    _curve(float(c2), float(lam), float(p), "theory", float(x), float(y))
                    for x, y in zip(dense / n, np.asarray(line[i]))
                )
                for j, m in enumerate(widths):
                    report.rows.append(
                        {
                            "c2": float(c2),
                            "lam": float(lam),
                            "p": float(p),
                            "p_eff": float(th.p_eff[i, j]),
                            "n": n,
                            "m": int(m),
                            "psi": m / n,
                            "d": d,
                            "sigma1": s1,
                            "sigma2": s2,
                            "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                            "theory": float(th.total[i, j]),
                            "theory_bias": float(th.bias[i, j]),
                            "theory_projection_variance": float(th.projection_variance[i, j]),
                            "theory_variance": float(th.variance[i, j]),
                            "theory_cross": float(th.cross[i, j]),
                            "theory_floor": float(th.floor[i, j]),
                            "sim_mean": float(sim.mean[i, j]),
                            "sim_sem": float(sim.sem[i, j]),
                            "trials": trials,
                            "z": float((sim.mean[i, j] - th.total[i, j]) / sim.sem[i, j]),
                            "rel_err": float(sim.mean[i, j] / th.total[i, j] - 1),
                            "allowance": float(allowance[j]),
                            "method": str(sim.method[i, j]),
                            "converged": bool(th.converged[i, j]),
                        }
                    )
            peak_th = theory.peak_width(*args, n=n, p=ps, lam=lam, sigma1=s1, sigma2=s2)
            for i, p in enumerate(ps):
                entry = {
                    "c2": float(c2),
                    "lam": float(lam),
                    "p": float(p),
                    "theory_m": float(peak_th.m[i]),
                    "theory_error": float(peak_th.error[i]),
                }
                if lam > 0:
                    zone = (widths >= peak_zone.min()) & (widths <= peak_zone.max())
                    found = simulated_peak(widths[zone], sim.errors[i][zone], seed=ctx.seed)
                    entry.update(sim_m=found.m, sim_low=found.low, sim_high=found.high, sim_error=found.error)
                    key = (float(c2), float(lam), float(p))
                    report.curves += [
                        _curve(*key, "theory_peak", entry["theory_m"] / n, entry["theory_error"]),
                        _curve(
                            *key,
                            "sim_peak",
                            found.m / n,
                            found.error,
                            x_low=found.low / n,
                            x_high=found.high / n,
                        ),
                    ]
                    report.notes.append(
                        f"c²={c2:g} λ={lam:g} p={p:<5g} peak: theory m* = {entry['theory_m']:.1f} "
                        f"(E = {entry['theory_error']:.3f}); simulation m̂ = {found.m:.1f} "
                        f"[{found.low:.1f}, {found.high:.1f}] (E = {found.error:.3f})"
                    )
                peaks.append(entry)
    return report.finish(ctx, peaks=peaks)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One column per synthetic quality c², one row per λ: theory lines (``curves``), simulation
    markers ± 2 s.e. (``results``) and, for λ > 0, the theory and simulated peaks (``curves``)."""
    qualities, lams, ps = results.unique("c2"), results.unique("lam"), results.unique("p")
    n, d, trials = int(results["n"][0]), int(results["d"][0]), int(results["trials"][0])
    s1, s2 = float(results["sigma1"][0]), float(results["sigma2"][0])
    fig, axes = new_figure(len(lams), len(qualities))
    palette = colors(len(ps))
    for col, c2 in enumerate(qualities):
        for row, lam in enumerate(lams):
            ax = axes[row, col]
            cells = results.where(c2=c2, lam=lam)
            panel = curves.where(c2=c2, lam=lam)
            lines = panel.where(series="theory")
            for i, p in enumerate(ps):
                sim, line = cells.where(p=p), lines.where(p=p)
                theory_and_simulation(
                    ax,
                    line["x"],
                    line["y"],
                    sim["psi"],
                    sim["sim_mean"],
                    sim["sim_sem"],
                    color=palette[i],
                    label=f"p = {p:g}",
                )
            for i, p in enumerate(ps):
                for found in panel.where(p=p, series="sim_peak").rows:
                    ax.errorbar(
                        [found["x"]],
                        [found["y"]],
                        xerr=[[found["x"] - found["x_low"]], [found["x_high"] - found["x"]]],
                        fmt="s",
                        color=palette[i],
                        ms=5,
                        capsize=3,
                    )
                for peak in panel.where(p=p, series="theory_peak").rows:
                    ax.plot(
                        [peak["x"]],
                        [peak["y"]],
                        marker="*",
                        ms=11,
                        color=palette[i],
                        mec="black",
                        mew=0.6,
                        ls="none",
                    )
            threshold(ax, 1.0, label="interpolation threshold m = n")
            ax.axvline(d / n, color="0.6", ls=":", lw=1.0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            finite = lines["y"][np.isfinite(lines["y"])]
            ax.set_ylim(
                0.5 * min(float(np.min(cells["sim_mean"])), float(finite.min())),
                min(float(finite.max()), 6 * float(np.max(cells["sim_mean"]))) * 1.5,
            )
            ax.set_xlabel(f"model size ψ = m/n  (n = {n}, d = {d})")
            ax.set_ylabel("test error on real data")
            reg = "ridgeless (λ = 0)" if lam == 0 else f"λ = {lam:g}"
            ax.set_title(f"synthetic quality c² = {c2:g}, {reg}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
    handles, _ = axes[0, 0].get_legend_handles_labels()
    peak_keys = [
        Line2D([], [], marker="*", ms=10, color="0.5", mec="black", ls="none", label="theory peak (λ > 0)"),
        Line2D([], [], marker="s", ms=5, color="0.5", ls="-", label="simulated peak, 5-95% bootstrap"),
        Line2D([], [], color="0.6", ls=":", label="m = d"),
    ]
    fig.legend(
        handles=handles + legend_keys(2, trials) + peak_keys,
        loc="outside lower center",
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"Model size and collapse (random projections, {config['spectrum']['kind']} Σ, d = {d}, "
        f"σ1 = {s1:g}, σ2 = {s2:g}): synthetic data raises the double-descent peak at m = n",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="width",
    summary="test error vs model size ψ = m/n (random projections): the interpolation peak, located (Thm 2)",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Sec. 4, Thm 2: at fixed n < d the test error has a double-descent peak at the interpolation "
    "threshold m = n, and synthetic data raise it; with λ > 0 the peak is finite and sits slightly "
    "below m = n.",
)
