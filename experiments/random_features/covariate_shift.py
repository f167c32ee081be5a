"""Experiment ``covariate-shift``: test error vs n when the synthetic covariates have Σ2 ≠ Σ1.

THEORY_SHIFT_GENERATIONS.md Part 1: ridge(less) regression on (1−p)n real rows x ~ N(0, Σ1) and
pn synthetic rows x ~ N(0, Σ2) labelled by w2 = w1 + Δ; the error is measured on the real
distribution. The two-group deterministic equivalent (CS) of §1.3 (commuting Σ2, §1.5) predicts a
plateau as n → ∞ that depends on Σ2 (§1.6):

    P(0) = Σ_i a_i Δ_i² (p_i^eff)²,   p_i^eff = p b_i/((1−p)a_i + p b_i),

the effective synthetic fraction of direction i; for Σ2 = sΣ1 it is (ps/(1−p+ps))² c², against the
same-covariance p²c² of Strong Model Collapse (Thm 1). More synthetic variance along Δ raises the
floor, less lowers it: strong collapse persists, at a level the no-shift theory gets wrong.

Panels: Σ2 = sΣ1 for a few s; Σ2 a power law of another exponent. Lines: (CS); markers: Monte
Carlo (exactly rint(p·n) synthetic rows, exact population risk, sufficient statistics at large n),
mean ± 2 s.e.; black dashed: the no-shift prediction (formula (A), ``analytic.linear``) that
ignores Σ2; dotted: the plateaus. Ridgeless sample sizes 0.8 < n/d < 1.25 are not simulated.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure

import strongcollapse.simulate as simulate
from analytic import covariate_shift as theory
from analytic import linear as no_shift
from experiments.random_features import PAPER, worst_cells
from strongcollapse.analysis.compare import finite_size_allowance
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
from strongcollapse.vocabulary.problem import Problem
from strongcollapse.vocabulary.spectra import make_spectrum
from strongcollapse.vocabulary.validation import (
    ParameterError,
    check_count,
    check_in_range,
    check_nonnegative,
    check_positive,
)

CONFIG: dict[str, Any] = {
    "seed": 0,
    "d": 100,
    # Σ1: a power law e_k = k^-β (not normalised), (w1)_k² ∝ k^-1.5, as THEORY_SHIFT_GENERATIONS §1.7.
    "spectrum": {"kind": "power_law", "beta": 1.5},
    "source": 1.5,
    "signal": 1.0,
    "c2": 1.0,
    "corr": 0.0,
    "p": 0.2,
    "lam": 0.0,
    "sigma1": 0.5,
    "sigma2": 0.5,
    # n as multiples of d; ridgeless, 0.8 < n/d < 1.25 is left to the theory (the pole at n = d).
    "n_over_d": [0.25, 0.4, 0.6, 1.5, 2, 3, 5, 10, 30, 100, 300, 1000, 3000, 10000],
    # Σ2 in Σ1's eigenbasis (commuting): {"scale": s} for Σ2 = sΣ1, or {"spectrum": {...}} for
    # the eigenvalues of any registered spectrum, aligned with Σ1's (both descending).
    "panels": [
        {
            "title": "scaled synthetic covariance Σ2 = sΣ1",
            "shifts": [{"scale": 0.25}, {"scale": 3.0}, {"scale": 10.0}],
        },
        {
            "title": "synthetic power law of another exponent",
            "shifts": [
                {"spectrum": {"kind": "power_law", "beta": 1.0}},
                {"spectrum": {"kind": "power_law", "beta": 2.0}},
            ],
        },
    ],
    "trials": 300,
    # r = r0 + 1/|n − d| (THEORY.md §5); THEORY_SHIFT_GENERATIONS §1.7 sees all cells within 1.3%.
    "r0": 0.02,
}

QUICK: dict[str, Any] = {"d": 50, "n_over_d": [0.5, 2, 5, 20, 100, 1000, 10000], "trials": 100}


def shift_label(shift: dict[str, Any]) -> str:
    """A legend label for one Σ2."""
    if "scale" in shift:
        return f"Σ2 = {float(shift['scale']):g}·Σ1"
    spec = dict(shift["spectrum"])
    kind = spec.pop("kind")
    fields = ", ".join(
        f"{k} = {v:g}" if isinstance(v, (int, float)) else f"{k} = {v}" for k, v in spec.items()
    )
    return f"Σ2: {kind.replace('_', ' ')}" + (f" ({fields})" if fields else "")


def _covariance(shift: Any, eigs: np.ndarray) -> np.ndarray:
    """Σ2's eigenvalues in Σ1's eigenbasis, checked (ParameterError naming the problem)."""
    if not isinstance(shift, dict) or len(shift) != 1 or not ({"scale", "spectrum"} & set(shift)):
        raise ParameterError(f"a shift must be {{'scale': s}} or {{'spectrum': {{...}}}}, got {shift!r}")
    if "scale" in shift:
        return float(check_positive("scale", shift["scale"])) * eigs
    eigs2 = make_spectrum(shift["spectrum"]).eigenvalues(eigs.shape[0])
    return theory.check_covariance("eigs2", eigs2, eigs.shape[0])


def _setup(config: dict[str, Any]) -> dict[str, Any]:
    """Every check of the config, before anything is computed (also ``validate``)."""
    d = int(check_count("d", config["d"], minimum=2))
    lam = float(check_nonnegative("lam", config["lam"]))
    ratios = np.ravel(check_in_range("n_over_d", config["n_over_d"], 1.0 / d, 1e7))
    ns = np.unique(np.maximum(np.rint(ratios * d), 1)).astype(np.int64)
    if lam == 0:
        ns = ns[(ns / d <= 0.8) | (ns / d >= 1.25)]
    if ns.size < 2:
        raise ParameterError("n_over_d must hold at least two sample sizes (away from n = d when λ = 0)")
    problem = Problem.build(
        config["spectrum"],
        d,
        source=config["source"],
        signal=config["signal"],
        c2=config["c2"],
        corr=config["corr"],
    )
    panels = config["panels"]
    if not isinstance(panels, list) or not panels:
        raise ParameterError("panels must list at least one panel")
    shifts = []
    for panel in panels:
        good = isinstance(panel, dict) and isinstance(panel.get("title"), str)
        if not good or not isinstance(panel.get("shifts"), list) or not panel["shifts"]:
            raise ParameterError(f"a panel needs a 'title' and a non-empty list of 'shifts', got {panel!r}")
        shifts.append([(shift_label(s), _covariance(s, problem.eigs)) for s in panel["shifts"]])
    return {
        "d": d,
        "n": ns,
        "p": float(check_in_range("p", config["p"], 0.0, 1.0)),
        "lam": lam,
        "sigma1": float(check_nonnegative("sigma1", config["sigma1"])),
        "sigma2": float(check_nonnegative("sigma2", config["sigma2"])),
        "trials": int(check_count("trials", config["trials"], minimum=2)),
        "r0": float(check_nonnegative("r0", config["r0"])),
        "problem": problem,
        "shifts": shifts,
    }


def validate(config: dict[str, Any]) -> None:
    """The whole config (every Σ2, the spectrum files) before anything is computed."""
    _setup(config)


def _dense_n(d: int, n_min: int, n_max: int) -> np.ndarray:
    """Integer n on a fine log grid for the theory lines, without the pole n = d."""
    grid = np.unique(np.rint(np.geomspace(max(1, n_min), n_max, 400)))
    return grid[grid != d]


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """(CS) theory, no-shift theory and simulation for every (panel, Σ2, n).

    ``curves.csv``: per panel the no-shift line (``no_shift``) and plateau (``no_shift_plateau``),
    per (panel, Σ2) the (CS) line (``theory``) and plateau (``plateau``); levels have x empty.
    """
    cfg = _setup(config)
    d, ns, p, lam, trials = cfg["d"], cfg["n"], cfg["p"], cfg["lam"], cfg["trials"]
    s1, s2, r0 = cfg["sigma1"], cfg["sigma2"], cfg["r0"]
    eigs, w1, delta = cfg["problem"].arrays()
    common = dict(p=p, lam=lam, sigma1=s1, sigma2=s2)
    report = Report(r_text=f"{r0:.0%} + 1/|n - d|")
    dense = _dense_n(d, int(ns.min()), int(ns.max()))
    base = no_shift.test_error(eigs, w1, delta, n=np.concatenate([ns, dense]), **common)
    report.solver(base)
    base_cells, base_line = np.asarray(base.total[: ns.size]), np.asarray(base.total[ns.size :])
    base_plateau = float(theory.plateau(eigs, eigs, w1, delta, p=p, lam=lam).value)  # = g(λ), THEORY.md §2
    allowance = finite_size_allowance(ns, d, r0)
    plateaus: list[dict[str, Any]] = []
    for panel, shifts in zip(config["panels"], cfg["shifts"]):
        title = panel["title"]
        report.curves.extend(
            {"panel": title, "shift": "", "series": "no_shift", "x": int(x), "y": float(y)}
            for x, y in zip(dense, base_line)
        )
        report.curves.append(
            {"panel": title, "shift": "", "series": "no_shift_plateau", "x": "", "y": base_plateau}
        )
        for spec, (label, eigs2) in zip(panel["shifts"], shifts):
            sim = simulate.linear(
                ctx.seed, eigs, w1, delta, n=ns, trials=trials, eigs2=eigs2,
                **common, **ctx.simulation(f"{title}: {label}"),
            )  # fmt: skip
            th = theory.test_error(eigs, eigs2, w1, delta, n=np.concatenate([ns, dense]), **common)
            report.solver(th)
            cells, line = np.asarray(th.total[: ns.size]), np.asarray(th.total[ns.size :])
            plateau = theory.plateau(eigs, eigs2, w1, delta, p=p, lam=lam)
            level = float(plateau.value)
            report.compare(sim.mean, sim.sem, cells, allowance)
            report.curves.extend(
                {"panel": title, "shift": label, "series": "theory", "x": int(x), "y": float(y)}
                for x, y in zip(dense, line)
            )
            report.curves.append({"panel": title, "shift": label, "series": "plateau", "x": "", "y": level})
            for j, n in enumerate(ns):
                report.rows.append(
                    {
                        "panel": title,
                        "shift": label,
                        "sigma2_cov": json.dumps(spec, sort_keys=True),
                        "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                        "d": d,
                        "n": int(n),
                        "n_over_d": float(n / d),
                        "p": p,
                        "p_eff": float(th.p_eff[j]),
                        "lam": lam,
                        "sigma1": s1,
                        "sigma2": s2,
                        "c2": cfg["problem"].c2,
                        "theory": float(cells[j]),
                        "theory_mean": float(th.mean[j]),
                        "theory_fluctuation": float(th.fluctuation[j]),
                        "theory_variance": float(th.variance[j]),
                        "weight_ratio": float(th.weight_ratio[j]),
                        "theory_no_shift": float(base_cells[j]),
                        "plateau": level,
                        "plateau_no_shift": base_plateau,
                        "sim_mean": float(sim.mean[j]),
                        "sim_sem": float(sim.sem[j]),
                        "trials": trials,
                        "z": float((sim.mean[j] - cells[j]) / sim.sem[j]),
                        "rel_err": float(sim.mean[j] / cells[j] - 1),
                        "allowance": float(allowance[j]),
                        "method": str(sim.method[j]),
                        "converged": bool(th.converged[j]),
                    }
                )
            plateaus.append(
                {"panel": title, "shift": label, "plateau": level, "no_shift_plateau": base_plateau}
            )
            report.notes.append(
                f"{label:>28}: plateau {level:.4f} ({level / base_plateau:.2f}× the no-shift "
                f"{base_plateau:.4f}); "
                f"E(n = {ns[-1]}) sim {sim.mean[-1]:.4f} ± {sim.sem[-1]:.1g}, theory {cells[-1]:.4f}; "
                f"synthetic row weight u2/u1 at n = {ns[-1]}: {float(th.weight_ratio[ns.size - 1]):.3f}"
            )
    report.notes.extend(worst_cells(report.rows, ("shift", "n")))
    return report.finish(ctx, plateaus=plateaus)


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """One panel per config panel: (CS) lines and plateaus, the no-shift line and plateau
    (``curves``), simulation markers ± 2 s.e. (``results``)."""
    panels = results.unique("panel")
    d, trials, p = int(results["d"][0]), int(results["trials"][0]), float(results["p"][0])
    lam = float(results["lam"][0])
    fig, axes = new_figure(1, len(panels), width=5.6, height=4.4)
    for col, title in enumerate(panels):
        ax = axes[0, col]
        cells, lines = results.where(panel=title), curves.where(panel=title)
        shifts = cells.unique("shift")
        palette = colors(len(shifts))
        base = lines.where(series="no_shift")
        ax.plot(base["x"], base["y"], color="black", ls="--", lw=1.3, label="no shift: formula (A), Σ2 := Σ1")
        base_level = float(lines.where(series="no_shift_plateau")["y"][0])
        ax.axhline(base_level, color="black", ls=":", lw=1.2)
        for i, label in enumerate(shifts):
            sim, line = cells.where(shift=label), lines.where(shift=label, series="theory")
            theory_and_simulation(
                ax, line["x"], line["y"], sim["n"], sim["sim_mean"], sim["sim_sem"],
                color=palette[i], label=label,
            )  # fmt: skip
            level = float(lines.where(shift=label, series="plateau")["y"][0])
            ax.axhline(level, color=palette[i], ls=":", lw=1.2)
        threshold(ax, d, label=f"n = d = {d}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        finite = np.concatenate([lines.where(series="theory")["y"], base["y"]])
        finite = finite[np.isfinite(finite)]
        levels = np.concatenate([lines.where(series="plateau")["y"], [base_level]])
        low = min(float(np.min(cells["sim_mean"])), float(np.min(levels)))
        top = min(float(np.max(finite)), 10 * float(np.max(cells["sim_mean"])))
        ax.set_ylim(low / 2, top * 1.5)
        ax.set_xlabel("sample size n")
        ax.set_ylabel("test error on real data  ‖ŵ − w1‖²_Σ1")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    keys = legend_keys(2, trials, "n → ∞ plateau (dotted): P = ‖Σ_mix⁻¹ pΣ2Δ‖²_Σ1 ridgeless; black: p²c²")
    keys[0].set_label("theory: two-group deterministic equivalent (CS)")
    fig.legend(handles=keys, loc="outside lower center", ncol=4, fontsize=8, frameon=False)
    reg = "ridgeless" if lam == 0 else f"λ = {lam:g}"
    fig.suptitle(
        f"Covariate shift (Model A, {config['spectrum']['kind'].replace('_', ' ')} Σ1, d = {d}, p = {p:g}, "
        f"c² = {float(results['c2'][0]):g}, {reg}): the error still plateaus, at a level set by Σ2",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="covariate-shift",
    summary="test error vs n with synthetic covariates Σ2 ≠ Σ1: a plateau set by Σ2 (scaled, other exponent)",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="THEORY_SHIFT_GENERATIONS §1.5-1.6: with synthetic covariates N(0, Σ2) the error still plateaus as "
    "n → ∞, at P(0) = Σ_i a_iΔ_i²(p_i^eff)² — (ps/(1−p+ps))²c² for Σ2 = sΣ1 — above the no-shift p²c² when "
    "Σ2 carries more variance along Δ and below it when less.",
)
