"""Experiment ``pareto``: real-only vs mixed test error across model sizes (the paper's Figure 1 diagram).

Strong Model Collapse (Dohmatob et al., ICLR 2025), Fig. 1 and Sec. 4 (random projections): for a
fixed total sample size n, each model size ψ = m/n gives a point (x, y) = (error when trained on
real data only, error when trained on the mix). Points on the diagonal would mean synthetic data
is harmless; collapse puts them above it. Larger models move along the curve: towards the
interpolation threshold both errors blow up, beyond it they come down, and the lower-left envelope
(the Pareto frontier: models no other model beats on both counts) shows the best trade-offs each
synthetic quality allows. THEORY.md §3.

Theory as curves over a dense ψ grid, simulation as markers (colour = log ψ, shape = quality) with
±2 s.e. bars in both coordinates; one panel per synthetic fraction p.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib import colormaps
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import strongcollapse.simulate as simulate
from analytic import random_projection as theory
from experiments.strong_model_collapse import PAPER
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.orchestration.plotting import legend_keys, new_figure
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.validation import ParameterError, check_count, check_in_range, check_nonnegative

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 1000,
    "n": 500,
    "spectrum": {"kind": "isotropic"},
    "source": 0.0,
    "corr": 0.0,
    "signal": 1.0,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "p": [0.02, 0.1, 0.4],
    # Synthetic quality, very high to very low (c² = ‖Δ‖²_Σ, the synthetic teacher's error).
    "c2": [0.01, 0.1, 1.0, 10.0],
    "quality_names": ["very high", "high", "low", "very low"],
    "lam": 0.0,
    "psi_theory": [0.05, 10.0],
    "psi": [0.1, 0.25, 0.5, 0.75, 1.5, 2.5, 5.0],
    "trials": 40,
    "r0": 0.02,
}

QUICK: dict[str, Any] = {"d": 200, "n": 100, "trials": 16, "psi": [0.1, 0.5, 1.5, 5.0]}

MARKERS = ("o", "s", "^", "D", "v", "P")
STYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (1, 1)))


def pareto_frontier(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Indices of the points no other point beats in both x and y (lower-left), by increasing x."""
    order = np.argsort(x, kind="stable")
    keep, best = [], np.inf
    for i in order:
        if np.isfinite(x[i]) and y[i] < best:
            keep.append(i)
            best = y[i]
    return np.asarray(keep, dtype=np.int64)


def _setup(config: dict[str, Any]) -> tuple:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    n = int(check_count("n", config["n"], minimum=2))
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    qualities = np.ravel(check_nonnegative("c2", config["c2"]))
    names = list(config["quality_names"])
    if len(names) != qualities.size or qualities.size > len(MARKERS):
        raise ParameterError(
            f"quality_names must name each of the {qualities.size} c2 values (at most {len(MARKERS)})"
        )
    lam = float(check_nonnegative("lam", config["lam"]))
    trials = int(check_count("trials", config["trials"], minimum=2))
    s1, s2 = (float(check_nonnegative(k, config[k])) for k in ("sigma1", "sigma2"))
    r0 = float(check_nonnegative("r0", config["r0"]))
    lo, hi = np.ravel(check_in_range("psi_theory", config["psi_theory"], 1.0 / n, 1e4))
    psi_dense = np.geomspace(lo, hi, 800)
    psi_dense = psi_dense[np.abs(psi_dense - 1) > 0.01]  # the pole itself (ridgeless) is +inf
    widths = np.unique(
        np.maximum(np.rint(np.ravel(check_in_range("psi", config["psi"], 1.0 / n, 1e4)) * n), 1)
    )
    widths = widths.astype(np.int64)
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
    return d, n, ps, qualities, problems, names, lam, trials, s1, s2, r0, psi_dense, widths


def validate(config: dict[str, Any]) -> None:
    """The whole config, every spectrum file included (the runner calls it first)."""
    _setup(config)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Real-only and mixed errors per (p, quality, ψ): theory curves, simulated points, frontiers.

    ``curves.csv``: per (p, c²) the theory curve (x, y) = (real-only, mixed error) over the dense ψ
    grid (``theory``) and its Pareto frontier (``frontier``, by increasing x).
    """
    d, n, ps, qualities, problems, names, lam, trials, s1, s2, r0, psi_dense, widths = _setup(config)
    report = Report(r_text=f"{r0:.0%} + 1/|n - min(m, d)|")
    frontiers: list[dict[str, Any]] = []
    for q, (c2, problem) in enumerate(zip(qualities, problems)):
        args = problem.arrays()
        p_all = np.concatenate([[0.0], ps])  # row 0: real data only, at the same n
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
            **ctx.simulation(f"c²={c2:g}"),
        )
        th = theory.test_error(*args, n=n, m=widths[None, :], p=p_all[:, None], lam=lam, sigma1=s1, sigma2=s2)
        report.solver(th)
        report.compare(sim.mean, sim.sem, th.total, finite_size_allowance(n, np.minimum(widths, d), r0))
        curve = np.asarray(
            theory.test_error(
                *args, n=n, m=psi_dense[None, :] * n, p=p_all[:, None], lam=lam, sigma1=s1, sigma2=s2
            ).total
        )
        for col, p in enumerate(ps):
            x, y = curve[0], curve[col + 1]
            front = pareto_frontier(x, y)
            key = {"p": float(p), "c2": float(c2)}
            for series, keep in (("theory", slice(None)), ("frontier", front)):
                report.curves.extend(
                    key | {"series": series, "psi": float(v), "x": float(a), "y": float(b)}
                    for v, a, b in zip(psi_dense[keep], x[keep], y[keep])
                )
            frontiers.append(
                {
                    "p": float(p),
                    "c2": float(c2),
                    "quality": names[q],
                    "frontier_psi": [float(v) for v in psi_dense[front]],
                    "best_mixed_error": float(y[front].min()),
                    "best_mixed_psi": float(psi_dense[front][np.argmin(y[front])]),
                }
            )
            report.notes.append(
                f"p={p:<5g} c²={c2:<5g} ({names[q]}): best mixed error {y[front].min():.4g} at ψ = "
                f"{psi_dense[front][np.argmin(y[front])]:.3g}; largest ψ on the frontier {psi_dense[front].max():.3g}"
            )
            for j, m in enumerate(widths):
                report.rows.append(
                    {
                        "p": float(p),
                        "c2": float(c2),
                        "quality": names[q],
                        "n": n,
                        "m": int(m),
                        "psi": m / n,
                        "d": d,
                        "lam": lam,
                        "sigma1": s1,
                        "sigma2": s2,
                        "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                        "theory_real_only": float(th.total[0, j]),
                        "theory_mixed": float(th.total[col + 1, j]),
                        "sim_real_only": float(sim.mean[0, j]),
                        "sim_real_only_sem": float(sim.sem[0, j]),
                        "sim_mixed": float(sim.mean[col + 1, j]),
                        "sim_mixed_sem": float(sim.sem[col + 1, j]),
                        "trials": trials,
                    }
                )
    return report.finish(ctx, frontiers=frontiers)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One panel per p: theory curves and frontiers per quality (``curves``), simulated points
    coloured by log ψ with ±2 s.e. bars in both coordinates (``results``)."""
    ps, qualities = results.unique("p"), results.unique("c2")
    names = [results.where(c2=c2)["quality"][0] for c2 in qualities]
    n, d, trials = int(results["n"][0]), int(results["d"][0]), int(results["trials"][0])
    fig, axes = new_figure(1, len(ps), width=5.0, height=4.6)
    psi = curves.where(series="theory")["psi"]
    cmap, norm = colormaps["viridis"], Normalize(np.log10(psi.min()), np.log10(psi.max()))
    means = np.concatenate([results["sim_real_only"], results["sim_mixed"]])
    span = np.array([means.min(), means.max()])
    for col, p in enumerate(ps):
        ax = axes[0, col]
        for q, c2 in enumerate(qualities):
            sim, lines = results.where(p=p, c2=c2), curves.where(p=p, c2=c2)
            curve, front = lines.where(series="theory"), lines.where(series="frontier")
            ax.plot(curve["x"], curve["y"], color="0.55", lw=0.9, ls=STYLES[q], zorder=1)
            ax.plot(front["x"], front["y"], color="black", lw=2.2, ls=STYLES[q], zorder=2)
            ax.errorbar(
                sim["sim_real_only"],
                sim["sim_mixed"],
                xerr=2 * sim["sim_real_only_sem"],
                yerr=2 * sim["sim_mixed_sem"],
                fmt="none",
                ecolor="0.4",
                elinewidth=0.8,
                zorder=3,
            )
            ax.scatter(
                sim["sim_real_only"],
                sim["sim_mixed"],
                c=np.log10(sim["psi"]),
                cmap=cmap,
                norm=norm,
                marker=MARKERS[q],
                s=36,
                edgecolors="black",
                linewidths=0.6,
                zorder=4,
            )
        ax.plot(span * [0.8, 1.25], span * [0.8, 1.25], color="0.3", lw=0.8, ls=(0, (4, 3)), zorder=0)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(span[0] * 0.8, span[1] * 1.25)
        ax.set_ylim(span[0] * 0.8, span[1] * 1.25)
        ax.set_xlabel("test error, trained on real data only")
        ax.set_ylabel(f"test error, trained on the mix (p = {p:g})")
        ax.set_title(f"synthetic fraction p = {p:g}  (n = {n}, d = {d})", fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
    colorbar = fig.colorbar(ScalarMappable(norm=norm, cmap=cmap), ax=axes[0, -1], pad=0.02)
    colorbar.set_label("log₁₀ ψ = log₁₀(m/n)")
    keys = [
        Line2D(
            [],
            [],
            marker=MARKERS[q],
            color="0.5",
            mec="black",
            ls=STYLES[q],
            lw=1.6,
            label=f"c² = {c2:g} ({names[q]} quality)",
        )
        for q, c2 in enumerate(qualities)
    ]
    keys += [
        Line2D([], [], color="black", lw=2.2, label="Pareto frontier (theory)"),
        Line2D([], [], color="0.55", lw=0.9, label="theory over ψ"),
        Line2D([], [], color="0.3", lw=0.8, ls=(0, (4, 3)), label="diagonal: no collapse"),
    ]
    keys += legend_keys(2, trials)[1:]
    fig.legend(handles=keys, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        "Model size vs synthetic data (random projections): each point one model size; above the "
        "diagonal, synthetic data hurts",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="pareto",
    summary="real-only vs mixed error across model sizes, per quality and p, with Pareto frontiers (Fig. 1)",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Fig. 1 and Sec. 4: at a fixed total n, each model size is a point (real-only error, mixed "
    "error); collapse puts the points above the diagonal, and the Pareto frontier shows the best "
    "trade-offs each synthetic quality allows.",
)
