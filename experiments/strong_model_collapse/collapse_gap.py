"""Experiment ``collapse-gap``: mixed minus real-only test error vs model size ψ = m/n.

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 4, Thm 2 and its corollaries (random
projections): at the same n, the damage done by synthetic data, gap(ψ) = E(p) − E(0), grows with the
model size below the interpolation threshold (larger models amplify collapse) and shrinks above it
towards a positive limit (larger models mitigate collapse but never remove it). THEORY.md §3,
"collapse gap"; ridgeless isotropic limit p²c²/φ + Δσ²/(φ − 1).

A third panel shows THEORY.md §5's caveat: with λ > 0 and a power-law spectrum the first-order
cross term can make mixed data slightly *better* than real data at finite n (gap < 0); strong
collapse is an n → ∞ statement.

Simulated gaps are means of per-trial differences (trial t of every cell shares the projection S,
its training sets are independent); error bars are ±2 s.e. of that mean.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import strongcollapse.simulate as simulate
from analytic import random_projection as theory
from experiments.strong_model_collapse import PAPER
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.orchestration.plotting import colors, legend_keys, new_figure, threshold
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.validation import ParameterError, check_count, check_in_range, check_nonnegative

CONFIG: dict[str, Any] = {
    "seed": 0,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "trials": 400,
    "r0": 0.02,
    "panels": [
        {
            "title": "isotropic, ridgeless",
            "spectrum": {"kind": "isotropic"},
            "source": 0.0,
            "corr": 0.0,
            "c2": 1.0,
            "d": 200,
            "n": 100,
            "lam": 0.0,
            "p": [0.1, 0.5],
            "psi": [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0],
        },
        {
            "title": "power law β = 1.5, ridgeless",
            "spectrum": {"kind": "power_law", "beta": 1.5},
            "source": 1.5,
            "corr": 0.0,
            "c2": 1.0,
            "d": 200,
            "n": 100,
            "lam": 0.0,
            "p": [0.1, 0.5],
            "psi": [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0],
        },
        {
            "title": "power law β = 1.5, λ = 0.01, n = 25d: mixing can help",
            "spectrum": {"kind": "power_law", "beta": 1.5},
            "source": 1.5,
            "corr": 0.5,
            "c2": 1.0,
            "d": 200,
            "n": 5000,
            "lam": 0.01,
            "p": [0.2],
            "psi": [0.0004, 0.001, 0.002, 0.004, 0.01, 0.02],
        },
    ],
}

QUICK: dict[str, Any] = {"trials": 64}


def _limit(args: tuple, n: int, p: np.ndarray, lam: float, s1: float, s2: float) -> np.ndarray:
    """The gap as ψ → ∞ (theory at m = 10⁹ n)."""
    return np.asarray(theory.collapse_gap(*args, n=n, m=1e9 * n, p=p, lam=lam, sigma1=s1, sigma2=s2))


def _panel(panel: dict[str, Any]) -> tuple:
    """One panel's checked parameters: d, n, λ, the p values, the ψ grid, the simulated widths, the
    Problem."""
    d, n = int(check_count("d", panel["d"], minimum=2)), int(check_count("n", panel["n"], minimum=2))
    lam = float(check_nonnegative("lam", panel["lam"]))
    ps = np.ravel(check_in_range("p", panel["p"], 0.0, 1.0))
    psis = np.ravel(check_in_range("psi", panel["psi"], 1.0 / n, 1e4))
    widths = np.unique(np.maximum(np.rint(psis * n), 1)).astype(np.int64)
    if lam == 0:  # the pole's heavy tails make Monte Carlo means meaningless right at ψ = 1
        widths = widths[np.abs(widths / n - 1) >= 0.1]
    problem = Problem.build(panel["spectrum"], d, source=panel["source"], c2=panel["c2"], corr=panel["corr"])
    return d, n, lam, ps, psis, widths, problem


def validate(config: dict[str, Any]) -> None:
    """The whole config, every panel (and spectrum file) included, before anything is computed."""
    check_count("trials", config["trials"], minimum=2)
    for key in ("sigma1", "sigma2", "r0"):
        check_nonnegative(key, config[key])
    if not config["panels"]:
        raise ParameterError("panels must list at least one panel")
    for panel in config["panels"]:
        _panel(panel)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Gap theory and simulated gaps (mixed − real-only means) per panel.

    ``curves.csv``: per (panel, p) the dense theory gap over ψ (``theory_gap``) and its ψ → ∞
    limit (``limit``, a level: x empty).
    """
    trials = int(check_count("trials", config["trials"], minimum=2))
    s1, s2 = (float(check_nonnegative(k, config[k])) for k in ("sigma1", "sigma2"))
    r0 = float(check_nonnegative("r0", config["r0"]))
    panels = config["panels"]
    if not panels:
        raise ParameterError("panels must list at least one panel")
    report = Report(r_text=f"{r0:.0%} + 1/|n - min(m, d)| on each error (gap: their combination)")
    limits: list[dict[str, Any]] = []
    for panel in panels:
        d, n, lam, ps, psis, widths, problem = _panel(panel)
        args = problem.arrays()
        p_all = np.concatenate([[0.0], ps])
        sim = simulate.random_projection(
            ctx.seed,
            *args,
            n=n,
            m=widths[None, :],
            p=p_all[:, None],
            lam=lam,
            sigma1=s1,
            sigma2=s2,
            trials=trials,
            **ctx.simulation(panel["title"]),
        )
        th = theory.test_error(*args, n=n, m=widths[None, :], p=p_all[:, None], lam=lam, sigma1=s1, sigma2=s2)
        report.solver(th)
        allowance = finite_size_allowance(n, np.minimum(widths, d), r0)
        report.compare(sim.mean, sim.sem, th.total, allowance)  # each error against its theory
        gap_th = np.asarray(
            theory.collapse_gap(*args, n=n, m=widths[None, :], p=ps[:, None], lam=lam, sigma1=s1, sigma2=s2)
        )
        # Trial t of every cell shares its projection S (model_b: common random numbers), so the gap's
        # standard error comes from the per-trial differences, not from the two means separately.
        diffs = sim.errors[1:] - sim.errors[0]
        gap_sim = diffs.mean(axis=-1)
        gap_sem = diffs.std(axis=-1, ddof=1) / np.sqrt(trials)
        dense = np.geomspace(psis.min(), psis.max(), 600) * n
        line = np.asarray(
            theory.collapse_gap(*args, n=n, m=dense[None, :], p=ps[:, None], lam=lam, sigma1=s1, sigma2=s2)
        )
        limit = _limit(args, n, ps, lam, s1, s2)
        for i, p in enumerate(ps):
            report.curves.extend(
                {"panel": panel["title"], "p": float(p), "series": "theory_gap", "x": float(x), "y": float(y)}
                for x, y in zip(dense / n, line[i])
            )
            report.curves.append(
                {"panel": panel["title"], "p": float(p), "series": "limit", "x": "", "y": float(limit[i])}
            )
            limits.append({"panel": panel["title"], "p": float(p), "limit_psi_to_inf": float(limit[i])})
            for j, m in enumerate(widths):
                report.rows.append(
                    {
                        "panel": panel["title"],
                        "spectrum": json.dumps(panel["spectrum"], sort_keys=True),
                        "d": d,
                        "n": n,
                        "m": int(m),
                        "psi": m / n,
                        "lam": lam,
                        "p": float(p),
                        "c2": problem.c2,
                        "corr": problem.corr,
                        "sigma1": s1,
                        "sigma2": s2,
                        "theory_mixed": float(th.total[i + 1, j]),
                        "theory_real_only": float(th.total[0, j]),
                        "theory_gap": float(gap_th[i, j]),
                        "sim_mixed": float(sim.mean[i + 1, j]),
                        "sim_real_only": float(sim.mean[0, j]),
                        "sim_gap": float(gap_sim[i, j]),
                        "sim_gap_sem": float(gap_sem[i, j]),
                        "trials": trials,
                        "gap_z": float((gap_sim[i, j] - gap_th[i, j]) / gap_sem[i, j]),
                    }
                )
            below, above = widths < n, widths > n
            if lam == 0 and below.sum() > 1 and above.sum() > 1:
                up = bool(np.all(np.diff(gap_th[i][below]) > 0))
                down = bool(np.all(np.diff(gap_th[i][above]) < 0))
                report.notes.append(
                    f"{panel['title']}, p={p:g}: theory gap increasing below ψ = 1: {up}; decreasing above: "
                    f"{down}; limit ψ → ∞ {limit[i]:.4g}; simulated gap at the widest model "
                    f"{gap_sim[i][-1]:.4g} ± {gap_sem[i][-1]:.1g}"
                )
            else:
                j = int(np.argmin(gap_th[i]))
                report.notes.append(
                    f"{panel['title']}, p={p:g}: most negative theory gap {gap_th[i, j]:.4g} "
                    f"({gap_th[i, j] / th.total[0, j]:+.1%} of the real-only error) at m = {widths[j]}; "
                    f"simulated {gap_sim[i, j]:.4g} ± {gap_sem[i, j]:.1g}"
                )
    return report.finish(ctx, limits=limits)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One panel per config panel: theory gap lines and ψ → ∞ limits (``curves``), simulated gaps
    ± 2 s.e. (``results``)."""
    panels = results.unique("panel")
    trials = int(results["trials"][0])
    fig, axes = new_figure(1, len(panels), width=5.0, height=4.3)
    for col, title in enumerate(panels):
        ax = axes[0, col]
        cells, lines = results.where(panel=title), curves.where(panel=title)
        d, n = int(cells["d"][0]), int(cells["n"][0])
        ps = cells.unique("p")
        palette = colors(len(ps) + 1)[1:]
        for i, p in enumerate(ps):
            sim, gap = cells.where(p=p), lines.where(p=p, series="theory_gap")
            ax.plot(gap["x"], gap["y"], color=palette[i], lw=1.6, label=f"p = {p:g}")
            ax.errorbar(
                sim["psi"],
                sim["sim_gap"],
                yerr=2 * sim["sim_gap_sem"],
                fmt="o",
                ms=4,
                color=palette[i],
                mfc="white",
                mew=1.2,
                capsize=2,
            )
            ax.axhline(float(lines.where(p=p, series="limit")["y"][0]), color=palette[i], ls=":", lw=1.2)
        if n < d:
            threshold(ax, 1.0, label="interpolation threshold m = n")
        ax.axhline(0.0, color="0.3", lw=0.8)
        ax.set_xscale("log")
        gap_sim, gap_sem = cells["sim_gap"], cells["sim_gap_sem"]
        top, bottom = float(np.max(gap_sim + 2 * gap_sem)), min(0.0, float(np.min(gap_sim - 2 * gap_sem)))
        span = max(top - bottom, 1e-12)
        ax.set_ylim(bottom - 0.1 * span, top + 0.15 * span)
        ax.set_xlabel(f"model size ψ = m/n  (n = {n}, d = {d})")
        ax.set_ylabel("collapse gap: E(mixed) − E(real only)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.legend(
        handles=legend_keys(2, trials, "ψ → ∞ limit of the gap (dotted)"),
        loc="outside lower center",
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        "Collapse gap vs model size (random projections, c² = 1): amplified below the interpolation "
        "threshold, mitigated but not removed above it",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="collapse-gap",
    summary="mixed minus real-only error vs model size: rises below m = n, falls to a positive limit above",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Sec. 4, Thm 2 and corollaries: at the same n the collapse gap E(mixed) − E(real only) grows "
    "with model size below the interpolation threshold and shrinks above it towards a positive limit; "
    "with λ > 0 on a power law, mixing can help at finite n.",
)
