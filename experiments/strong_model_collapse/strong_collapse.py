"""Experiment ``strong-collapse``: test error vs n for a real + synthetic mix (the headline claim).

Strong Model Collapse (Dohmatob et al., ICLR 2025), Thm 1 / Cor. 1 and Fig. 2 (classical linear
model): for any p > 0 the test error on real data stops improving as n grows. Ridgeless it
plateaus at p²c²; with the best λ for each n it still plateaus, at P* = min_λ g(λ) > 0
(THEORY.md §2). One panel per spectrum (isotropic, power law), one row per regularisation
(ridgeless, tuned λ*(n, p)); theory lines, simulation markers, plateaus dotted.

The simulation reaches n = 1000·d at the cost of n = d, through the sufficient statistics of
THEORY.md §6, so the plateaus are *measured*, not only predicted.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import strongcollapse.simulate as simulate
from analytic import linear as theory
from experiments.strong_model_collapse import PAPER
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.orchestration.plotting import colors, legend_keys, new_figure, theory_and_simulation, threshold
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.validation import ParameterError, check_count, check_in_range, check_nonnegative

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 100,
    # Sample sizes as multiples of d; the band 0.8 < n/d < 1.25 around the pole is left out of the
    # simulation (heavy-tailed errors there: THEORY.md §5) but drawn by the theory.
    # Up to n = 10⁵·d: the cost of a fit does not grow with n (sufficient statistics), and only
    # there does p = 0.001 reach its plateau (σ̃²d/n falls below p²c² once n ≳ 10⁷ at d = 100).
    "n_over_d": [0.25, 0.4, 0.6, 1.5, 2, 3, 5, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000],
    "p": [0.0, 0.001, 0.01, 0.1, 0.5],
    "c2": 1.0,
    "corr": 0.0,
    "signal": 1.0,
    "sigma1": 0.1,
    "sigma2": 0.1,
    "panels": [
        {"title": "isotropic", "spectrum": {"kind": "isotropic"}, "source": 0.0},
        {"title": "power law", "spectrum": {"kind": "power_law", "beta": 1.5}, "source": 1.5},
    ],
    "regularisation": ["ridgeless", "tuned"],
    "trials": 200,
    # Finite-size allowance r = r0 + 1/|n − d| of the tolerance rule (strongcollapse.analysis.compare).
    "r0": 0.02,
}

QUICK: dict[str, Any] = {"d": 40, "n_over_d": [0.5, 2, 10, 100, 10000], "trials": 64}

REGULARISATIONS = ("ridgeless", "tuned")


def _validated(config: dict[str, Any]) -> dict[str, Any]:
    d = int(check_count("d", config["d"], minimum=2))
    ratios = check_in_range("n_over_d", config["n_over_d"], 1.0 / d, 1e7)
    ps = check_in_range("p", config["p"], 0.0, 1.0)
    regs = list(config["regularisation"])
    unknown = [r for r in regs if r not in REGULARISATIONS]
    if unknown or not regs:
        raise ParameterError(
            f"regularisation must be a non-empty list from {list(REGULARISATIONS)}, got {regs}"
        )
    ns = np.unique(np.rint(np.ravel(ratios) * d)).astype(np.int64)
    if (ns == d).any():
        raise ParameterError(f"n_over_d must avoid 1: n = d = {d} is the ridgeless pole (infinite error)")
    return {
        "d": d,
        "n": ns,
        "p": np.ravel(ps),
        "regs": regs,
        "trials": int(check_count("trials", config["trials"], minimum=2)),
        "sigma1": float(check_nonnegative("sigma1", config["sigma1"])),
        "sigma2": float(check_nonnegative("sigma2", config["sigma2"])),
        "r0": float(check_nonnegative("r0", config["r0"])),
    }


def _problems(config: dict[str, Any], d: int) -> list[Problem]:
    """One Problem per panel (spectrum files are read and checked here)."""
    if not config["panels"]:
        raise ParameterError("panels must list at least one spectrum")
    return [
        Problem.build(
            panel["spectrum"],
            d,
            source=panel.get("source", 0.0),
            signal=config["signal"],
            c2=config["c2"],
            corr=config["corr"],
        )
        for panel in config["panels"]
    ]


def validate(config: dict[str, Any]) -> None:
    """The whole config, every panel's spectrum included, before anything is computed."""
    _problems(config, _validated(config)["d"])


def _lams(problem: Problem, reg: str, n: np.ndarray, p: np.ndarray, s1: float, s2: float) -> np.ndarray:
    """λ per (p, n): 0 ridgeless, λ*(n, p) of the deterministic equivalent when tuned."""
    if reg == "ridgeless":
        return np.zeros((p.size, n.size))
    lam = theory.optimal_lam(*problem.arrays(), n=n[None, :], p=p[:, None], sigma1=s1, sigma2=s2)
    return np.asarray(lam)


def _dense_n(d: int, n_min: int, n_max: int) -> np.ndarray:
    """Integer n on a fine log grid for theory lines, skipping the pole n = d itself."""
    grid = np.unique(np.rint(np.geomspace(max(1, n_min), n_max, 400)))
    return grid[grid != d]


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """Theory + simulation for every (panel, regularisation, p, n); CSV rows, dense theory curves."""
    cfg = _validated(config)
    d, ns, ps, regs, trials = cfg["d"], cfg["n"], cfg["p"], cfg["regs"], cfg["trials"]
    s1, s2 = cfg["sigma1"], cfg["sigma2"]
    problems = _problems(config, d)
    report = Report(r_text=f"{cfg['r0']:.0%} + 1/|n-d|")
    report.notes.append("at the largest n, against the predicted n → ∞ plateau:")

    for panel, problem in zip(config["panels"], problems):
        args = problem.arrays()
        lam = np.stack([_lams(problem, reg, ns, ps, s1, s2) for reg in regs])  # (R, P, N)
        n_grid = np.broadcast_to(ns, lam.shape)
        p_grid = np.broadcast_to(ps[None, :, None], lam.shape)
        th = theory.test_error(*args, n=n_grid, p=p_grid, lam=lam, sigma1=s1, sigma2=s2)
        sim = simulate.linear(
            ctx.seed,
            *args,
            n=n_grid,
            p=p_grid,
            lam=lam,
            sigma1=s1,
            sigma2=s2,
            trials=trials,
            **ctx.simulation(panel["title"]),
        )
        report.solver(th)
        plateaus = theory.plateau(*args, p=ps)
        allowance = finite_size_allowance(n_grid, d, cfg["r0"])
        report.compare(sim.mean, sim.sem, th.total, allowance)

        dense = _dense_n(d, int(ns.min()), int(ns.max()))
        for r, reg in enumerate(regs):
            dense_lam = _lams(problem, reg, dense, ps, s1, s2)
            line = theory.test_error(
                *args, n=dense[None, :], p=ps[:, None], lam=dense_lam, sigma1=s1, sigma2=s2
            ).total
            floor = plateaus.ridgeless if reg == "ridgeless" else plateaus.floor
            for i, p in enumerate(ps):
                report.curves.extend(
                    {"panel": panel["title"], "regularisation": reg, "p": float(p), "n": int(n), "theory": float(e)}
                    for n, e in zip(dense, np.asarray(line[i]))
                )
                if p > 0:  # the largest n: how close to the plateau did the simulation get?
                    report.notes.append(
                        f"{panel['title']:>10} {reg:>9} p={p:<6g} E(n={ns[-1]}) = {sim.mean[r, i, -1]:.3e}"
                        f" ± {sim.sem[r, i, -1]:.1e}, plateau {float(floor[i]):.3e} "
                        f"(ratio {sim.mean[r, i, -1] / float(floor[i]):.3f})"
                    )

        for r, reg in enumerate(regs):
            for i, p in enumerate(ps):
                for j, n in enumerate(ns):
                    report.rows.append(
                        {
                            "panel": panel["title"],
                            "spectrum": json.dumps(panel["spectrum"], sort_keys=True),
                            "source": panel.get("source", 0.0),
                            "d": d,
                            "n": int(n),
                            "n_over_d": n / d,
                            "p": float(p),
                            "p_eff": float(th.p_eff[r, i, j]),
                            "regularisation": reg,
                            "lam": float(lam[r, i, j]),
                            "sigma1": s1,
                            "sigma2": s2,
                            "c2": problem.c2,
                            "corr": problem.corr,
                            "theory": float(th.total[r, i, j]),
                            "theory_bias": float(th.bias[r, i, j]),
                            "theory_variance": float(th.variance[r, i, j]),
                            "theory_cross": float(th.cross[r, i, j]),
                            "theory_floor": float(th.floor[r, i, j]),
                            "plateau": float(
                                (plateaus.ridgeless if reg == "ridgeless" else plateaus.floor)[i]
                            ),
                            "sim_mean": float(sim.mean[r, i, j]),
                            "sim_sem": float(sim.sem[r, i, j]),
                            "trials": trials,
                            "z": float(sim.zscore(th.total)[r, i, j]),
                            "rel_err": float(sim.mean[r, i, j] / th.total[r, i, j] - 1),
                            "allowance": float(allowance[r, i, j]),
                            "method": str(sim.method[r, i, j]),
                            "kappa": float(th.kappa[r, i, j]),
                            "converged": bool(th.converged[r, i, j]),
                        }
                    )
    return report.finish(ctx)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One column per spectrum panel, one row per regularisation: theory lines (``curves``),
    simulation markers ± 2 s.e. and the predicted plateaus (``results``)."""
    panels = results.unique("panel")
    regs = results.unique("regularisation")
    ps = results.unique("p")
    d, trials = int(results["d"][0]), int(results["trials"][0])
    s1, s2 = float(results["sigma1"][0]), float(results["sigma2"][0])
    fig, axes = new_figure(len(regs), len(panels))
    palette = colors(len(ps))
    for col, panel in enumerate(panels):
        for r, reg in enumerate(regs):
            ax = axes[r, col]
            cells = results.where(panel=panel, regularisation=reg)
            lines = curves.where(panel=panel, regularisation=reg)
            floors = []
            for i, p in enumerate(ps):
                sim, line = cells.where(p=p), lines.where(p=p)
                theory_and_simulation(
                    ax,
                    line["n"],
                    line["theory"],
                    sim["n"],
                    sim["sim_mean"],
                    sim["sim_sem"],
                    color=palette[i],
                    label=f"p = {p:g}",
                )
                floor = float(sim["plateau"][0])
                floors.append(floor)
                if floor > 0:
                    ax.axhline(floor, color=palette[i], ls=":", lw=1.2)
            threshold(ax, d, label=f"n = d = {d}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            finite = lines["theory"][np.isfinite(lines["theory"])]
            floors = np.asarray(floors)
            low = min(float(np.min(cells["sim_mean"])), float(np.min(np.where(floors > 0, floors, np.inf))))
            ax.set_ylim(low / 3, min(float(np.max(finite)), 30 * float(np.max(cells["sim_mean"]))) * 2)
            ax.set_xlabel("sample size n")
            ax.set_ylabel("test error on real data  ‖ŵ − w1‖²_Σ")
            lam_text = "ridgeless (λ = 0)" if reg == "ridgeless" else "tuned λ*(n, p)"
            ax.set_title(f"{panel}: {lam_text}")
            ax.grid(True, which="major", alpha=0.3)

    handles, _ = axes[0, 0].get_legend_handles_labels()
    plateau_label = "n → ∞ plateau (dotted): p²c² ridgeless, P* = min_λ g(λ) tuned"
    fig.legend(
        handles=handles + legend_keys(2, trials, plateau_label),
        loc="outside lower center",
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    fig.suptitle(
        f"Strong model collapse (Model A ridge, d = {d}, c² = {config['c2']:g}, σ1 = {s1:g}, σ2 = {s2:g}): "
        "any p > 0 stops the error from improving\n"
        "exactly rint(p·n) samples are synthetic, in theory and simulation alike: hence the steps of "
        "the theory lines where p·n is small",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="strong-collapse",
    summary="test error vs n for p in {0, 0.001, 0.01, 0.1, 0.5}: ridgeless and tuned plateaus (Thm 1)",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Thm 1 and Cor. 1: for any p > 0 the test error stops improving as n grows; ridgeless it "
    "plateaus at p²c², with the best λ for each n at P* = min_λ g(λ) > 0. p = 0 keeps falling.",
)
