"""Experiment ``scaling-width``: the error of random-projection models vs width m, as n → ∞.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 4 (width scaling); THEORY.md §3 "large-n
plateau of Model B" and §4 "Model B, width scaling". With unlimited data a width-m model keeps the
approximation error A(m) = κ_m⟨w1, Σ(Σ+κ_m)^-1 w1⟩ ∝ m^-min(β, β+δ−1) of the clean target, and
synthetic data add p²⟨Δ, Σ²(Σ+κ_m)^-1 Δ⟩, which *grows* with m towards p²c²: bigger models learn
more of the synthetic teacher's error. So the clean power law in m flattens at p²c².

Left: E vs m at n = ∞ (theory, solid), at a large finite n (theory, dashed) and simulated at that
n (markers ± 2 s.e.). Right: local slope d log E/d log m (theory at n = ∞ by autodiff; simulation
by 3-width windows with 95% intervals) against the predicted exponent.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import strongcollapse.simulate as simulate
from analytic import random_projection as theory
from analytic import scaling
from experiments.strong_model_collapse import PAPER
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.orchestration.plotting import colors, legend_keys, new_figure, theory_and_simulation
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.analysis.slopes import window_slopes
from strongcollapse.vocabulary.validation import ParameterError, check_count, check_in_range, check_nonnegative

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 500,
    "spectrum": {"kind": "power_law", "beta": 1.5},
    "source": 1.5,
    "c2": 1.0,
    "corr": 0.0,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "p": [0.0, 0.01, 0.1],
    "n_over_d": 100,
    "m": [2, 4, 8, 16, 32, 64, 128, 256, 400],
    "trials": 100,
    "r0": 0.03,
}

QUICK: dict[str, Any] = {"d": 200, "m": [2, 8, 32, 128], "trials": 32}


def _curve(p: Any, series: str, x: Any, y: float, **bounds: float) -> dict[str, Any]:
    """A ``curves.csv`` row (x: the width m; empty strings where a field does not apply)."""
    return {"p": p, "series": series, "x": x, "y": y, "y_low": "", "y_high": ""} | bounds


def _setup(config: dict[str, Any]) -> tuple:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    n = int(round(float(check_in_range("n_over_d", config["n_over_d"], 1.0, 1e9)) * d))
    widths = np.unique(np.ravel(check_in_range("m", config["m"], 1, d - 1))).astype(np.int64)
    if widths.size < 3:
        raise ParameterError(f"m must list at least 3 widths below d = {d}, got {widths.tolist()}")
    trials = int(check_count("trials", config["trials"], minimum=2))
    s1, s2 = (float(check_nonnegative(k, config[k])) for k in ("sigma1", "sigma2"))
    r0 = float(check_nonnegative("r0", config["r0"]))
    problem = Problem.build(
        config["spectrum"], d, source=config["source"], c2=config["c2"], corr=config["corr"]
    )
    args = problem.arrays()
    return d, ps, n, widths, trials, s1, s2, r0, problem, args


def validate(config: dict[str, Any]) -> None:
    """The whole config, every spectrum file included (the runner calls it first)."""
    _setup(config)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Width curves at n = ∞ and finite n, theory and simulation; local slopes.

    ``curves.csv``, per p: the theory E(m) at n = ∞ (``theory_n_inf``) and at the simulated n
    (``theory_finite_n``), the n = ∞, m → d limit p²c² (``synthetic_limit``, a level, p > 0), the
    local slope at n = ∞ (``theory_slope``) and the simulated window slopes with 95% intervals
    (``sim_slope``); for a power-law spectrum also the predicted slope −min(β, β+δ−1)
    (``predicted_slope``, p empty).
    """
    d, ps, n, widths, trials, s1, s2, r0, problem, args = _setup(config)
    power = config["spectrum"].get("kind") == "power_law"
    predicted = scaling.exponents(config["spectrum"]["beta"], config["source"]).width if power else None

    sim = simulate.random_projection(
        ctx.seed,
        *args,
        n=n,
        m=widths[None, :],
        p=ps[:, None],
        lam=0.0,
        sigma1=s1,
        sigma2=s2,
        trials=trials,
        **ctx.simulation("widths"),
    )
    th = theory.test_error(*args, n=n, m=widths[None, :], p=ps[:, None], lam=0.0, sigma1=s1, sigma2=s2)
    report = Report(r_text=f"{r0:.0%} + 1/|n - m|")
    report.solver(th)
    report.compare(sim.mean, sim.sem, th.total, finite_size_allowance(n, widths[None, :], r0))
    dense = np.geomspace(widths.min(), widths.max(), 300)
    limit = theory.infinite_data_limit(*args, m=dense[None, :], p=ps[:, None])
    finite = np.asarray(
        theory.test_error(*args, n=n, m=dense[None, :], p=ps[:, None], lam=0.0, sigma1=s1, sigma2=s2).total
    )
    slope = np.asarray(scaling.width_slope(*args, m=dense[None, :], p=ps[:, None]))
    if predicted is not None:
        report.curves.append(_curve("", "predicted_slope", "", -predicted))
    measured = []
    for i, p in enumerate(ps):
        for series, values in (
            ("theory_n_inf", np.asarray(limit.total[i])),
            ("theory_finite_n", finite[i]),
            ("theory_slope", slope[i]),
        ):
            report.curves.extend(_curve(float(p), series, float(x), float(y)) for x, y in zip(dense, values))
        if p > 0:
            report.curves.append(_curve(float(p), "synthetic_limit", "", p**2 * problem.c2))
        for s in window_slopes(widths, sim.mean[i], sim.sem[i]):
            report.curves.append(_curve(float(p), "sim_slope", s.center, s.slope, y_low=s.low, y_high=s.high))
            measured.append(
                {"p": float(p), "center_m": s.center, "slope": s.slope, "low": s.low, "high": s.high}
            )
        report.notes.append(
            f"p={p:g}: E(m={widths[-1]}) simulated {sim.mean[i, -1]:.4g} ± {sim.sem[i, -1]:.1g}, n = ∞ theory "
            f"{float(theory.infinite_data_limit(*args, m=float(widths[-1]), p=p).total):.4g} (synthetic part "
            f"{float(theory.infinite_data_limit(*args, m=float(widths[-1]), p=p).synthetic):.3g} of p²c² = {p**2 * problem.c2:.3g})"
        )
        for j, m in enumerate(widths):
            report.rows.append(
                {
                    "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                    "d": d,
                    "n": n,
                    "m": int(m),
                    "p": float(p),
                    "sigma1": s1,
                    "sigma2": s2,
                    "theory": float(th.total[i, j]),
                    "theory_n_inf": float(theory.infinite_data_limit(*args, m=float(m), p=p).total),
                    "sim_mean": float(sim.mean[i, j]),
                    "sim_sem": float(sim.sem[i, j]),
                    "trials": trials,
                    "z": float((sim.mean[i, j] - th.total[i, j]) / sim.sem[i, j]),
                }
            )
    return report.finish(ctx, predicted_width_exponent=predicted, measured_slopes=measured)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """Left: E vs m, theory at n = ∞ and at finite n with the p²c² limits (``curves``), simulation
    ± 2 s.e. (``results``). Right: local slopes, theory and simulated, and the predicted exponent."""
    ps = results.unique("p")
    d, n, trials = int(results["d"][0]), int(results["n"][0]), int(results["trials"][0])
    predicted = curves.where(series="predicted_slope")["y"]
    fig, axes = new_figure(1, 2, width=5.6, height=4.4)
    left, right = axes[0]
    palette = colors(len(ps))
    for i, p in enumerate(ps):
        sim, lines = results.where(p=p), curves.where(p=p)
        limit, finite = lines.where(series="theory_n_inf"), lines.where(series="theory_finite_n")
        theory_and_simulation(
            left,
            limit["x"],
            limit["y"],
            sim["m"],
            sim["sim_mean"],
            sim["sim_sem"],
            color=palette[i],
            label=f"p = {p:g}",
        )
        left.plot(finite["x"], finite["y"], color=palette[i], ls="--", lw=1.0)
        for level in lines.where(series="synthetic_limit")["y"]:
            left.axhline(level, color=palette[i], ls=":", lw=1.1)
        slope = lines.where(series="theory_slope")
        right.plot(slope["x"], slope["y"], color=palette[i], lw=1.5)
        for s in lines.where(series="sim_slope").rows:
            right.errorbar(
                [s["x"]],
                [s["y"]],
                yerr=[[s["y"] - s["y_low"]], [s["y_high"] - s["y"]]],
                fmt="o",
                ms=4,
                color=palette[i],
                mfc="white",
                capsize=2,
            )
    for level in predicted:
        right.axhline(level, color="0.3", ls="--", lw=1.0)
    right.axhline(0.0, color="0.3", lw=0.8)
    for ax in (left, right):
        ax.set_xscale("log")
        ax.set_xlabel(f"model width m  (d = {d})")
        ax.grid(True, which="major", alpha=0.3)
    left.set_yscale("log")
    left.set_ylabel("test error on real data")
    left.set_title(f"error vs width: n = ∞ (solid), n = {n:,} (dashed, markers)", fontsize=10)
    right.set_ylabel("local slope d log E / d log m")
    right.set_title("local slope: theory at n = ∞, simulation at finite n", fontsize=10)
    handles, _ = left.get_legend_handles_labels()
    keys = [
        Line2D([], [], color="0.3", ls="--", label="predicted −min(β, β+δ−1)" if len(predicted) else "—"),
        Line2D([], [], color="0.5", ls=":", label="p²c² (the n = ∞, m → d limit)"),
    ]
    fig.legend(
        handles=handles + legend_keys(2, trials) + keys,
        loc="outside lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        "Width scaling with synthetic data (random projections, ridgeless): the clean power law in m "
        "flattens at p²c²",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="scaling-width",
    summary="error vs width at n = ∞ and large n: a power law in m that flattens at p²c² with synthetic data",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Sec. 4, width scaling: with unlimited data the error of a width-m model falls as a power law "
    "m^-min(β, β+δ−1), and synthetic data make it flatten at p²c².",
)
