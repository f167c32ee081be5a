"""Experiment ``random-features-gap``: the collapse gap E(p) − E(0) vs width m, per activation.

THEORY_RF.md §11 (ii)-(iii): for nonlinear random features, at the same n, the damage done by
synthetic data grows with the width below the threshold m = n (larger models amplify collapse —
including d < m < n, where the linear model's gap is flat) and shrinks above it towards the
kernel-limit gap, which stays positive (larger models mitigate collapse but never remove it).
Ridgeless isotropic, Δ ⟂ w1: below m = n the gap is p²c²[q + (1−q)ψ/(1−ψ)] + Δσ²ψ/(1−ψ)
(THEORY_RF §6), p²c² + Δσ² at m = n/2 for every activation.

Lines: the (RF) gap (DE2 refinement for ReLU, as ``random-features``), dense in m; dotted: its
m → ∞ (kernel) limit. Markers: simulated gaps, means of per-trial differences E_t(p) − E_t(0):
trial t of every cell shares the first layer W (common random numbers), its training sets are
independent, so the per-trial differences give the standard error; ±2 s.e. The agreement rule is
applied to each error E(p), E(0) against its theory, as in ``collapse-gap``.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import strongcollapse.simulate as simulate
from analytic import random_features as theory
from experiments.random_features import PAPER, worst_cells
from experiments.random_features.random_features import (
    allowance,
    check_activations,
    kernel_limit,
    problem_of,
    refinement_for,
    widths_of,
)
from strongcollapse.orchestration.plotting import colors, legend_keys, new_figure, threshold
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.activations import get_activation
from strongcollapse.vocabulary.validation import (
    ParameterError,
    check_count,
    check_in_range,
    check_nonnegative,
)

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 100,
    "n": 200,
    "spectrum": {"kind": "isotropic"},
    "source": 0.0,
    "signal": 1.0,
    "c2": 1.0,
    "corr": 0.0,  # Δ ⟂ w1: the sign conditions of THEORY_RF §11 (ii) hold
    "sigma1": 0.5,
    "sigma2": 0.5,
    "activations": ["relu", "tanh", "erf", "linear"],
    "p": [0.1, 0.5],  # p = 0 (the reference) is always simulated too
    "lam": 0.0,
    "psi": [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0],
    "line_psi": [0.05, 50.0],
    "refinement": "DE2",
    "trials": 100,
    "r0": 0.03,
}

# The same grid as random-features' quick form: the compiled simulation is shared.
QUICK: dict[str, Any] = {
    "d": 50,
    "n": 100,
    "activations": ["relu", "linear"],
    "psi": [0.1, 0.25, 0.5, 0.8, 1.25, 2.0, 5.0],
    "trials": 40,
}


def _setup(config: dict[str, Any]) -> dict[str, Any]:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    n = int(check_count("n", config["n"], minimum=2))
    acts = check_activations(config["activations"])
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    if ps.size == 0 or np.any(ps == 0) or np.unique(ps).size != ps.size:
        raise ParameterError(f"p must list distinct fractions in (0, 1] (p = 0 is added), got {config['p']}")
    lam = float(check_nonnegative("lam", config["lam"]))
    widths = widths_of(n, config["psi"], "psi")
    if lam == 0:  # the pole's heavy tails make Monte Carlo means meaningless right at m = n
        widths = widths[np.abs(widths / n - 1) >= 0.1]
    if widths.size < 2:
        raise ParameterError("psi must hold at least two simulated widths")
    line = np.ravel(check_in_range("line_psi", config["line_psi"], 1.0 / n, 1e6))
    if line.size != 2 or not line[0] < line[1]:
        raise ParameterError(f"line_psi must be [low, high] with low < high, got {config['line_psi']}")
    for act in acts:
        refinement_for(act, config["refinement"])
    return {
        "d": d,
        "n": n,
        "acts": acts,
        "p": ps,
        "p_all": np.concatenate([[0.0], ps]),
        "lam": lam,
        "widths": widths,
        "dense": np.geomspace(line[0], line[1], 600) * n,
        "trials": int(check_count("trials", config["trials"], minimum=2)),
        "sigma1": float(check_nonnegative("sigma1", config["sigma1"])),
        "sigma2": float(check_nonnegative("sigma2", config["sigma2"])),
        "r0": float(check_nonnegative("r0", config["r0"])),
        "problem": problem_of(config, d),
    }


def validate(config: dict[str, Any]) -> None:
    """The whole config (every activation, the spectrum file) before anything is computed."""
    _setup(config)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Theory and simulated gaps per activation; one simulation call holds p = 0 and every p.

    ``results.csv``: one row per (activation, p, m) with p = 0 included; ``theory``/``sim_*`` are the
    error E(p), ``*_gap`` the gap E(p) − E(0) (identically 0 with s.e. 0 on the p = 0 rows).
    ``curves.csv``: per (activation, p > 0) the dense theory gap over ψ (``theory_gap``) and its
    m → ∞ limit (``kernel_gap``, a level: x empty).
    """
    cfg = _setup(config)
    d, n, ps, p_all, lam = cfg["d"], cfg["n"], cfg["p"], cfg["p_all"], cfg["lam"]
    widths, dense, trials, r0 = cfg["widths"], cfg["dense"], cfg["trials"], cfg["r0"]
    s1, s2 = cfg["sigma1"], cfg["sigma2"]
    args = cfg["problem"].arrays()
    report = Report(
        r_text=f"{r0:.0%} + 1/max(|n - threshold|, 0.1n) on each error E(p), E(0) (the gap: their difference)"
    )
    summary: list[dict[str, Any]] = []
    gap_z: list[float] = []
    for act in cfg["acts"]:
        refinement = refinement_for(act, config["refinement"])
        common = dict(lam=lam, sigma1=s1, sigma2=s2, activation=act, refinement=refinement)
        # p = 0 and every p in one call: trial t of each cell shares W (common random numbers).
        sim = simulate.random_features(
            ctx.seed, *args, n=n, m=widths[None, :], p=p_all[:, None], lam=lam, sigma1=s1, sigma2=s2,
            activation=act, trials=trials, **ctx.simulation(act),
        )  # fmt: skip
        grid = np.concatenate([widths.astype(np.float64), dense])
        th = theory.test_error(*args, n=n, m=grid[None, :], p=p_all[:, None], **common)
        gap_line = theory.collapse_gap(*args, n=n, m=grid[None, :], p=p_all[:, None], **common)
        no_lam = {k: v for k, v in common.items() if k != "lam"}
        levels, ker = kernel_limit(args, n, p_all, grid.size, **no_lam)
        report.solver(th)
        report.solver(ker)
        k = widths.size
        cells, gap_th, line = th.total[:, :k], np.asarray(gap_line)[:, :k], np.asarray(gap_line)[:, k:]
        kernel_gap = levels - levels[0]
        r = allowance(act, n, d, widths, r0)
        report.compare(sim.mean, sim.sem, cells, r[None, :])
        diffs = sim.errors - sim.errors[0]  # per-trial differences, common W
        gap_sim = diffs.mean(axis=-1)
        gap_sem = diffs.std(axis=-1, ddof=1) / np.sqrt(trials)
        for i, p in enumerate(p_all):
            key = {"activation": act, "p": float(p)}
            if p > 0:
                report.curves.extend(
                    key | {"series": "theory_gap", "x": float(x / n), "y": float(y)}
                    for x, y in zip(dense, line[i])
                )
                report.curves.append(key | {"series": "kernel_gap", "x": "", "y": float(kernel_gap[i])})
            for j, m in enumerate(widths):
                z_gap = float((gap_sim[i, j] - gap_th[i, j]) / gap_sem[i, j]) if p > 0 else 0.0
                if p > 0:
                    gap_z.append(z_gap)
                report.rows.append(
                    key
                    | {
                        "refinement": refinement or "none",
                        "lam": lam,
                        "p_eff": float(th.p_eff[i, j]),
                        "n": n,
                        "m": int(m),
                        "psi": float(m / n),
                        "d": d,
                        "sigma1": s1,
                        "sigma2": s2,
                        "c2": cfg["problem"].c2,
                        "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                        "theory": float(cells[i, j]),
                        "sim_mean": float(sim.mean[i, j]),
                        "sim_sem": float(sim.sem[i, j]),
                        "trials": trials,
                        "z": float((sim.mean[i, j] - cells[i, j]) / sim.sem[i, j]),
                        "rel_err": float(sim.mean[i, j] / cells[i, j] - 1),
                        "allowance": float(r[j]),
                        "theory_gap": float(gap_th[i, j]) if p > 0 else 0.0,
                        "sim_gap": float(gap_sim[i, j]) if p > 0 else 0.0,
                        "sim_gap_sem": float(gap_sem[i, j]) if p > 0 else 0.0,
                        "gap_z": z_gap,
                        "theory_kernel_gap": float(kernel_gap[i]),
                        "converged": bool(th.converged[i, j]),
                    }
                )
            if p == 0:
                continue
            below, above = widths < n, widths > n
            up = bool(np.all(np.diff(gap_th[i][below]) > 0)) if below.sum() > 1 else None
            down = bool(np.all(np.diff(gap_th[i][above]) < 0)) if above.sum() > 1 else None
            summary.append(
                {"activation": act, "p": float(p), "theory_rises_below": up, "theory_falls_above": down,
                 "kernel_gap": float(kernel_gap[i]), "sim_gap_widest": float(gap_sim[i, -1]),
                 "sim_gap_widest_sem": float(gap_sem[i, -1])}
            )  # fmt: skip
            flat = " (linear σ: flat once m >= d)" if get_activation(act).mu_star == 0 else ""
            report.notes.append(
                f"{act:>6} p={p:<4g}: theory gap rises below m = n: {up}; falls above: {down}{flat}; "
                "kernel-limit "
                f"gap {kernel_gap[i]:.4f}; simulated gap at m = {widths[-1]}: {gap_sim[i, -1]:.4f} ± "
                f"{gap_sem[i, -1]:.1g} (theory {gap_th[i, -1]:.4f})"
            )
    if gap_z:
        worst = float(np.max(np.abs(gap_z)))
        report.notes.append(
            f"simulated gaps against the theory gap: worst |z| {worst:.2f} over {len(gap_z)} cells"
        )
    report.notes.extend(worst_cells(report.rows, ("activation", "p", "m")))
    return report.finish(ctx, gaps=summary)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One panel per activation: theory gap lines and kernel-limit gaps (``curves``), simulated gaps
    ± 2 s.e. of the per-trial differences (``results``)."""
    acts = results.unique("activation")
    n, d, trials = int(results["n"][0]), int(results["d"][0]), int(results["trials"][0])
    lam = float(results["lam"][0])
    fig, axes = new_figure(1, len(acts), width=4.6, height=4.2)
    for col, act in enumerate(acts):
        ax = axes[0, col]
        cells, lines = results.where(activation=act), curves.where(activation=act)
        ps = [p for p in cells.unique("p") if p > 0]
        palette = colors(len(ps) + 1)[1:]
        lows, highs = [], []
        for i, p in enumerate(ps):
            sim, gap = cells.where(p=p), lines.where(p=p, series="theory_gap")
            ax.plot(gap["x"], gap["y"], color=palette[i], lw=1.6, label=f"p = {p:g}")
            mean, sem = sim["sim_gap"], sim["sim_gap_sem"]
            shown = mean > 0  # log axis: a non-positive simulated gap is drawn as a marker at the bottom
            lower = np.minimum(2 * sem, mean * (1 - 1e-9))
            ax.errorbar(
                sim["psi"][shown], mean[shown], yerr=[lower[shown], 2 * sem[shown]], fmt="o", ms=4,
                color=palette[i], mfc="white", mew=1.2, capsize=2,
            )  # fmt: skip
            level = float(lines.where(p=p, series="kernel_gap")["y"][0])
            ax.axhline(level, color=palette[i], ls=":", lw=1.2)
            lows += [level, float(np.min(sim["theory_gap"]))]
            if shown.any():
                lows.append(float(np.min(mean[shown])))
            highs.append(float(np.max((mean + 2 * sem)[shown])) if shown.any() else level)
            if (~shown).any():  # at the bottom edge, in axes coordinates
                ax.plot(
                    sim["psi"][~shown], np.full((~shown).sum(), 0.02), "v", ms=5, color=palette[i],
                    mfc="white", transform=ax.get_xaxis_transform(), clip_on=False,
                )  # fmt: skip
        threshold(ax, 1.0, label="interpolation threshold m = n")
        if get_activation(act).mu_star == 0:
            ax.axvline(d / n, color="0.6", ls="-.", lw=1.0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(0.6 * min(lows), 2.0 * max(highs))
        ax.set_xlabel(f"width ψ = m/n  (n = {n}, d = {d})")
        ax.set_ylabel("collapse gap E(p) − E(0)")
        refinement = ", DE2" if str(cells["refinement"][0]) == "DE2" else ""
        ax.set_title(f"{act} features{refinement}", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    handles, _ = axes[0, 0].get_legend_handles_labels()
    keys = legend_keys(2, trials, "kernel-limit gap m → ∞ (dotted)")
    keys[1].set_label(f"simulated gap ± 2 s.e. (per-trial differences, {trials} trials)")
    keys.append(
        Line2D(
            [], [], color="0.2", marker="v", mfc="white", ls="none", label="simulated gap <= 0 (off the axis)"
        )
    )
    keys.append(Line2D([], [], color="0.6", ls="-.", label="m = d (linear features)"))
    fig.legend(handles=handles + keys, loc="outside lower center", ncol=3, fontsize=8, frameon=False)
    reg = "ridgeless" if lam == 0 else f"λ = {lam:g}"
    fig.suptitle(
        f"Collapse gap vs width (random features, {config['spectrum']['kind']} Σ, {reg}, "
        f"c² = {float(results['c2'][0]):g})\namplified below m = n, mitigated above it, never removed",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="random-features-gap",
    summary="random-feature collapse gap E(p) − E(0) vs width: rises below m = n, falls to a kernel gap > 0",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="THEORY_RF §11 (ii)-(iii): for nonlinear random features the collapse gap E(p) − E(0) grows with "
    "the width below m = n (also for d < m < n, where the linear gap is flat) and falls above it to the "
    "kernel-limit gap, which stays positive.",
)
