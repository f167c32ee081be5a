"""Experiment ``random-features``: test error vs width m for nonlinear random features.

THEORY_RF.md §5-7 and §11 (Strong Model Collapse's Model B with σ(Wx/√d) features, Mei & Montanari
2019 for p = 0): ridge on m frozen features σ(⟨w_i, x⟩/√d), n training points of which rint(p·n)
are synthetic. For every activation with μ* > 0 the only interpolation threshold is m = n (a pole
ridgeless, a finite Θ(λ^-1/2) peak with λ > 0), synthetic data raise the whole curve, and as
m → ∞ the error falls to the kernel-ridge level (dotted), itself above the clean one: collapse
survives the infinite-width limit. Linear features (Model B with n > d) have no threshold at m = n.

Panels: one column per activation, one row per λ (Model B's λ on ‖a‖²; Mei–Montanari's is λd/m).
Lines: the deterministic equivalent (RF) — with the DE2 refinement of THEORY_RF §8 for activations
with μ0, μ2 ≠ 0 (ReLU), whose O(1/d) correction near the kernel limit is several per cent at
d ≤ 100 (THEORY_RF §12, K1); DE2 = (RF) for odd σ. Markers: exact-risk Monte Carlo (THEORY_RF §9),
mean ± 2 s.e. Ridgeless widths within 10% of m = n are not simulated (heavy-tailed errors at the
pole, as in ``width``).
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
from strongcollapse.orchestration.plotting import (
    colors,
    legend_keys,
    new_figure,
    theory_and_simulation,
    threshold,
)
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment, RunContext
from strongcollapse.orchestration.tables import Table
from strongcollapse.vocabulary.activations import get_activation
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.vocabulary.validation import (
    ParameterError,
    check_count,
    check_in_range,
    check_nonnegative,
)

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 100,
    "n": 200,  # n = 2d, as THEORY_RF §11's gap table
    "spectrum": {"kind": "isotropic"},  # (RF) is trusted for isotropic or bounded spectra (THEORY_RF §12)
    "source": 0.0,
    "signal": 1.0,
    "c2": 1.0,
    "corr": 0.0,
    "sigma1": 0.5,
    "sigma2": 0.5,
    "activations": ["relu", "tanh", "erf", "linear"],
    "p": [0.0, 0.1, 0.5],
    # Rows: ridgeless (the pole at m = n) and a small ridge (a finite peak at m = n). λ is Model B's
    # λ on ‖a‖² (λ_MM = λd/m = 5e-4 at m = n here).
    "lam": [0.0, 0.001],
    # Simulated widths as ψ = m/n (the ridgeless row skips |ψ − 1| < 0.1).
    "psi": [0.1, 0.2, 0.35, 0.5, 0.65, 0.8, 0.9, 1.1, 1.25, 1.5, 2.0, 3.0, 5.0],
    # Extra simulated widths around m = n for λ > 0, where the peak is finite.
    "peak_psi": [0.95, 1.0, 1.05],
    # The dense theory lines span this ψ range (beyond the simulation, towards the kernel limit).
    "line_psi": [0.05, 50.0],
    # "DE2" (THEORY_RF §8) or "none": the refinement used where μ* > 0 (no-op for odd σ).
    "refinement": "DE2",
    "trials": 100,
    # r = r0 + 1/max(|n − threshold|, 0.1 n): THEORY_RF §12 sees 1-3% finite-size bias at d = 50-100.
    "r0": 0.03,
}

QUICK: dict[str, Any] = {
    "d": 50,
    "n": 100,
    "activations": ["relu", "linear"],
    "lam": [0.0],
    "psi": [0.1, 0.25, 0.5, 0.8, 1.25, 2.0, 5.0],
    "trials": 40,
}

REFINEMENTS = ("DE2", "none")


def widths_of(n: int, psis: Any, name: str) -> np.ndarray:
    """Integer widths rint(ψ·n) >= 1, sorted and distinct."""
    psis = np.ravel(check_in_range(name, psis, 1.0 / n, 1e4))
    return np.unique(np.maximum(np.rint(psis * n), 1)).astype(np.int64)


def check_activations(names: Any) -> list[str]:
    """A non-empty list of distinct registered activation names (ParameterError otherwise)."""
    if not isinstance(names, list) or not names or not all(isinstance(a, str) for a in names):
        raise ParameterError(f"activations must be a non-empty list of names, got {names!r}")
    if len(set(names)) != len(names):
        raise ParameterError(f"activations must be distinct, got {names}")
    for name in names:
        act = get_activation(name)  # ParameterError listing the known names
        if act.mu1 == 0:
            raise ParameterError(f"activation {name!r} has mu1 = 0: its features carry no linear signal")
    return list(names)


def refinement_for(activation: str, refinement: str) -> str | None:
    """The refinement used for one activation: "DE2" where it differs from (RF), i.e. μ* > 0 and
    μ0 or μ2 ≠ 0 (ReLU); for odd σ DE2 is (RF) itself (THEORY_RF §8), so None."""
    if refinement not in REFINEMENTS:
        raise ParameterError(f"refinement must be one of {list(REFINEMENTS)}, got {refinement!r}")
    act = get_activation(activation)
    differs = act.mu_star > 0 and (act.mu0 != 0 or act.mu2 != 0)
    return "DE2" if refinement == "DE2" and differs else None


def allowance(activation: str, n: int, d: int, m: Any, r0: float) -> np.ndarray:
    """r = r0 + 1/max(|n − threshold|, 0.1 n) per width.

    The threshold is m for μ* > 0 (THEORY_RF §7: only m = n) and min(m, d) for linear features
    (Model B). Ridgeless cells are at least 0.1 n from it, so there this is THEORY.md §5's
    r0 + 1/|n − threshold|; the floor 0.1 n only bounds the term at the finite peak of λ > 0.
    """
    m = np.asarray(m, dtype=np.float64)
    edge = m if get_activation(activation).mu_star > 0 else np.minimum(m, d)
    return r0 + 1.0 / np.maximum(np.abs(n - edge), 0.1 * n)


def kernel_limit(args: tuple, n: int, ps: np.ndarray, size: int, **common: Any) -> tuple[np.ndarray, Any]:
    """The m → ∞ level per p (kernel ridgeless: λ_K = λ/m → 0 at any fixed λ on a), and the theory
    result for the solver report.

    Evaluated on a (p, size) grid, as large as the width grid's, so that it reuses that grid's
    compiled chunk of the theory instead of compiling a small one (seconds on CPU).
    """
    res = theory.kernel_limit(*args, n=np.full((1, size), float(n)), p=ps[:, None], lam=0.0, **common)
    return np.asarray(res.total)[:, 0], res


def problem_of(config: dict[str, Any], d: int) -> Problem:
    """The teacher pair of the config (the spectrum file, if any, is read and checked here)."""
    return Problem.build(
        config["spectrum"],
        d,
        source=config["source"],
        signal=config["signal"],
        c2=config["c2"],
        corr=config["corr"],
    )


def _setup(config: dict[str, Any]) -> dict[str, Any]:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    n = int(check_count("n", config["n"], minimum=2))
    acts = check_activations(config["activations"])
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    lams = np.ravel(check_nonnegative("lam", config["lam"]))
    if ps.size == 0 or lams.size == 0:
        raise ParameterError("p and lam must each list at least one value")
    line = np.ravel(check_in_range("line_psi", config["line_psi"], 1.0 / n, 1e6))
    if line.size != 2 or not line[0] < line[1]:
        raise ParameterError(f"line_psi must be [low, high] with low < high, got {config['line_psi']}")
    main = widths_of(n, config["psi"], "psi")
    ridgeless = main[np.abs(main / n - 1) >= 0.1]
    if ridgeless.size == 0:
        raise ParameterError("psi must hold a width at least 10% away from m = n")
    peak = widths_of(n, config["peak_psi"], "peak_psi")
    for act in acts:
        refinement_for(act, config["refinement"])
    return {
        "d": d,
        "n": n,
        "acts": acts,
        "p": ps,
        "lam": lams,
        "widths0": ridgeless,  # λ = 0
        "widths": np.union1d(main, peak),  # λ > 0
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
    """Theory + simulation over (activation, λ, p, width).

    ``curves.csv``: per (activation, λ, p) the dense theory line over ψ = m/n (``theory``) and the
    kernel limit m → ∞ (``kernel_limit``, a level: x empty).
    """
    cfg = _setup(config)
    d, n, ps, trials, r0 = cfg["d"], cfg["n"], cfg["p"], cfg["trials"], cfg["r0"]
    s1, s2, dense = cfg["sigma1"], cfg["sigma2"], cfg["dense"]
    args = cfg["problem"].arrays()
    report = Report(r_text=f"{r0:.0%} + 1/max(|n - threshold|, 0.1n), threshold m (min(m, d) for linear σ)")
    kernel_levels: list[dict[str, Any]] = []
    for act in cfg["acts"]:
        refinement = refinement_for(act, config["refinement"])
        common = dict(sigma1=s1, sigma2=s2, activation=act, refinement=refinement)
        levels, ker = kernel_limit(args, n, ps, cfg["widths0"].size + dense.size, **common)
        report.solver(ker)
        for i, p in enumerate(ps):
            kernel_levels.append({"activation": act, "p": float(p), "kernel_limit": float(levels[i])})
        for lam in cfg["lam"]:
            widths = cfg["widths0"] if lam == 0 else cfg["widths"]
            sim = simulate.random_features(
                ctx.seed,
                *args,
                n=n,
                m=widths[None, :],
                p=ps[:, None],
                lam=float(lam),
                sigma1=s1,
                sigma2=s2,
                activation=act,
                trials=trials,
                **ctx.simulation(f"{act} λ={lam:g}"),
            )
            # One theory call for the cells and the dense line (one compiled grid).
            grid = np.concatenate([widths.astype(np.float64), dense])
            th = theory.test_error(*args, n=n, m=grid[None, :], p=ps[:, None], lam=float(lam), **common)
            report.solver(th)
            cells, line = th.total[:, : widths.size], th.total[:, widths.size :]
            r = allowance(act, n, d, widths, r0)
            report.compare(sim.mean, sim.sem, cells, r[None, :])
            for i, p in enumerate(ps):
                key = {"activation": act, "lam": float(lam), "p": float(p)}
                report.curves.extend(
                    key | {"series": "theory", "x": float(x / n), "y": float(y)}
                    for x, y in zip(dense, line[i])
                )
                report.curves.append(key | {"series": "kernel_limit", "x": "", "y": float(levels[i])})
                for j, m in enumerate(widths):
                    report.rows.append(
                        key
                        | {
                            "refinement": refinement or "none",
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
                            "theory_kernel_limit": float(levels[i]),
                            "theory_kappa": float(th.kappa[i, j]),
                            "theory_D2": float(th.D2[i, j]),
                            "sim_mean": float(sim.mean[i, j]),
                            "sim_sem": float(sim.sem[i, j]),
                            "trials": trials,
                            "z": float((sim.mean[i, j] - cells[i, j]) / sim.sem[i, j]),
                            "rel_err": float(sim.mean[i, j] / cells[i, j] - 1),
                            "allowance": float(r[j]),
                            "converged": bool(th.converged[i, j]),
                        }
                    )
            if lam == 0:
                j = int(np.argmax(widths))
                for i, p in enumerate(ps):
                    report.notes.append(
                        f"{act:>6} p={p:<4g}: widest simulated m = {widths[j]} (ψ = {widths[j] / n:g}): "
                        f"sim {sim.mean[i, j]:.4f} ± {sim.sem[i, j]:.1g}, theory {cells[i, j]:.4f}; "
                        f"kernel limit {levels[i]:.4f}"
                    )
    report.notes.extend(worst_cells(report.rows, ("activation", "lam", "p", "m")))
    return report.finish(ctx, kernel_limits=kernel_levels)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One column per activation, one row per λ: theory lines and kernel limits (``curves``),
    simulation markers ± 2 s.e. (``results``), the threshold m = n dashed."""
    acts, lams, ps = results.unique("activation"), results.unique("lam"), results.unique("p")
    n, d, trials = int(results["n"][0]), int(results["d"][0]), int(results["trials"][0])
    s1, s2 = float(results["sigma1"][0]), float(results["sigma2"][0])
    fig, axes = new_figure(len(lams), len(acts), width=4.6, height=3.9)
    palette = colors(len(ps))
    for col, act in enumerate(acts):
        for row, lam in enumerate(lams):
            ax = axes[row, col]
            cells = results.where(activation=act, lam=lam)
            panel = curves.where(activation=act, lam=lam)
            lines = panel.where(series="theory")
            for i, p in enumerate(ps):
                sim, line = cells.where(p=p), lines.where(p=p)
                theory_and_simulation(
                    ax, line["x"], line["y"], sim["psi"], sim["sim_mean"], sim["sim_sem"],
                    color=palette[i], label=f"p = {p:g}",
                )  # fmt: skip
                for level in panel.where(p=p, series="kernel_limit").rows:
                    ax.axhline(level["y"], color=palette[i], ls=":", lw=1.2)
            threshold(ax, 1.0, label="interpolation threshold m = n")
            if get_activation(act).mu_star == 0:
                ax.axvline(d / n, color="0.6", ls="-.", lw=1.0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            finite = lines["y"][np.isfinite(lines["y"])]
            levels = panel.where(series="kernel_limit")["y"]
            low = min(float(np.min(cells["sim_mean"])), float(np.min(finite)), float(np.min(levels)))
            top = min(float(np.max(finite)), 5 * float(np.max(cells["sim_mean"] + 2 * cells["sim_sem"])))
            ax.set_ylim(0.8 * low, 1.3 * top)
            ax.set_xlabel(f"width ψ = m/n  (n = {n}, d = {d})")
            ax.set_ylabel("test error on real data")
            reg = "ridgeless (λ = 0)" if lam == 0 else f"λ = {lam:g} on ‖a‖²"
            refinement = str(cells["refinement"][0])
            extra = ", DE2" if refinement == "DE2" else ""
            ax.set_title(f"{act} features{extra}: {reg}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
    handles, _ = axes[0, 0].get_legend_handles_labels()
    keys = legend_keys(2, trials, "kernel limit m → ∞ (dotted)")
    keys.append(Line2D([], [], color="0.6", ls="-.", label="m = d (linear features)"))
    fig.legend(handles=handles + keys, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        f"Random features σ(Wx/√d), {config['spectrum']['kind']} Σ, c² = {float(results['c2'][0]):g}, "
        f"σ1 = {s1:g}, σ2 = {s2:g}\nnonlinear σ: a peak only at m = n; synthetic data raise the error at "
        "every width, down to the kernel limit",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="random-features",
    summary="random-feature error vs width m (ReLU, tanh, erf vs linear): threshold m = n, kernel limit",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="THEORY_RF §7 and §11: for nonlinear random features the only interpolation threshold is m = n "
    "(a pole ridgeless, a finite peak with λ > 0), synthetic data raise the error at every width, and "
    "the kernel limit m → ∞ keeps a collapse penalty; linear features have no peak at m = n when n > d.",
)
