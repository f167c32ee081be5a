"""Experiment ``scaling``: how synthetic data bends a power-law scaling law (Model A).

Strong Model Collapse (Dohmatob et al., ICLR 2025), Sec. 3.2 (power-law spectra) and Cor. 1;
THEORY.md §4. With e_k = k^-β and (w1)_k² ∝ k^-δ, clean ridge regression has E ∝ n^-a: ridgeless
and noiseless a = β + δ − 1, tuned and noisy a = (β+δ−1)/(β+δ). Any synthetic fraction p first
turns the fast noiseless rate into the noisy one (its labels act as noise of variance ≥ p(1−p)c²)
and then flattens it to 0 beyond n* ≈ σ̃² P*^(-(β+δ)/(β+δ−1)), at the floor P*.

Top row: E vs n (theory lines, simulation markers ± 2 s.e.). Bottom row: the local slope
d log E/d log n, from the deterministic equivalent by autodiff (lines) and from the simulation by
weighted log-log fits over windows of three sizes (markers, 95% intervals); predicted exponents as
dashed guides, n* as dotted verticals. Columns: noiseless ridgeless (n < d), noiseless tuned,
noisy tuned.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

import strongcollapse.simulate as simulate
from analytic import linear as theory
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
    "p": [0.0, 1e-4, 1e-3, 1e-2, 1e-1],
    "columns": [
        {
            "title": "noiseless, ridgeless",
            "sigma": 0.0,
            "regularisation": "ridgeless",
            "n": [10, 20, 40, 80, 160],
        },
        {
            "title": "noiseless, tuned λ*",
            "sigma": 0.0,
            "regularisation": "tuned",
            "n": [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000],
        },
        # σ = 1: the optimal ridge then keeps df1(κ*) far below d up to n = 10⁶, so the clean noisy
        # exponent −2/3 holds over three decades at d = 500 (with σ = 0.1 finite d bends it to −0.8).
        {
            "title": "noisy (σ1 = σ2 = 1), tuned λ*",
            "sigma": 1.0,
            "regularisation": "tuned",
            "n": [10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000, 300000, 1000000],
        },
    ],
    "trials": 100,
    # Finite-size allowance: power law under strong regularisation 1-3% (THEORY.md §5).
    "r0": 0.03,
    "curve_points": 200,  # sizes on each theory curve (each tuned point solves for λ*)
}

QUICK: dict[str, Any] = {
    "d": 200,
    "trials": 24,
    "curve_points": 50,
    "columns": [
        {"title": "noiseless, ridgeless", "sigma": 0.0, "regularisation": "ridgeless", "n": [10, 20, 40, 80]},
        {
            "title": "noiseless, tuned λ*",
            "sigma": 0.0,
            "regularisation": "tuned",
            "n": [10, 100, 1000, 10000, 100000],
        },
        {
            "title": "noisy (σ1 = σ2 = 1), tuned λ*",
            "sigma": 1.0,
            "regularisation": "tuned",
            "n": [10, 100, 1000, 10000, 100000],
        },
    ],
}


def _lam(problem: Problem, reg: str, n: np.ndarray, ps: np.ndarray, sigma: float, exact: bool) -> np.ndarray:
    if reg == "ridgeless":
        return np.zeros((ps.size, n.size))
    if reg != "tuned":
        raise ParameterError(f"regularisation must be 'ridgeless' or 'tuned', got {reg!r}")
    return np.asarray(
        theory.optimal_lam(
            *problem.arrays(), n=n[None, :], p=ps[:, None], sigma1=sigma, sigma2=sigma, exact_count=exact
        )
    )


def _shown(n: np.ndarray, p: float, sigma: float, d: int) -> np.ndarray:
    """Which sizes a curve is drawn and compared at.

    p > 0 only from p·n >= 1: below, an exact count has no synthetic sample at all (while the
    idealised fraction would add p(1−p)c² of label noise), so neither curve describes the other.
    Noiseless clean data (p = 0, σ = 0) only for n < d/2: from n = d on, OLS recovers w1 exactly and
    the error is 0 (no point on log axes).
    """
    shown = (p * n >= 1 - 1e-9) if p > 0 else np.ones(n.shape, dtype=bool)
    return shown & (n < d / 2) if (p == 0 and sigma == 0) else shown


def _curve(column: str, p: Any, series: str, x: Any, y: Any, **bounds: float) -> dict[str, Any]:
    """A ``curves.csv`` row (empty strings where a field does not apply); ``y_low``/``y_high`` bound
    a simulated slope."""
    return {"column": column, "p": p, "series": series, "x": x, "y": y, "y_low": "", "y_high": ""} | bounds


def _column(column: dict[str, Any], d: int) -> tuple[float, str, np.ndarray]:
    """One column's checked noise level, regularisation and sample sizes."""
    sigma = float(check_nonnegative("sigma", column["sigma"]))
    reg = column["regularisation"]
    ns = np.unique(np.ravel(check_in_range("n", column["n"], 2, 1e9))).astype(np.int64)
    if reg == "ridgeless" and (ns >= d).any():
        raise ParameterError(f"ridgeless columns need n < d = {d} (the d = ∞ regime), got n = {int(ns.max())}")
    return sigma, reg, ns


def validate(config: dict[str, Any]) -> None:
    """The whole config, every column included, before anything is computed."""
    d = int(check_count("d", config["d"], minimum=2))
    check_in_range("p", config["p"], 0.0, 1.0)
    check_count("trials", config["trials"], minimum=2)
    check_nonnegative("r0", config["r0"])
    Problem.build(config["spectrum"], d, source=config["source"], c2=config["c2"], corr=config["corr"])
    for column in config["columns"]:
        _column(column, d)


def run(config: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    """E vs n and local slopes, theory and simulation, per column; exponents and crossovers reported.

    ``curves.csv``, per (column, p): the theory E(n) (``theory``) and its local slope
    (``theory_slope``) on the sizes drawn, the simulated window slopes with 95% intervals
    (``sim_slope``), the predicted crossover n* where it falls inside the column (``crossover``, y
    empty); and, for a power-law spectrum, the predicted exponents a of E ∝ n^-a
    (``exponent <name>``, column, p and x empty).
    """
    d = int(check_count("d", config["d"], minimum=2))
    ps = np.ravel(check_in_range("p", config["p"], 0.0, 1.0))
    trials = int(check_count("trials", config["trials"], minimum=2))
    r0 = float(check_nonnegative("r0", config["r0"]))
    problem = Problem.build(
        config["spectrum"], d, source=config["source"], c2=config["c2"], corr=config["corr"]
    )
    args = problem.arrays()
    power = config["spectrum"].get("kind") == "power_law"
    predicted = scaling.exponents(config["spectrum"]["beta"], config["source"]) if power else None
    report = Report(r_text=f"{r0:.0%} + 1/|n - d|")
    if predicted is not None:
        report.curves.extend(_curve("", "", f"exponent {k}", "", v) for k, v in predicted._asdict().items())
    measured: list[dict[str, Any]] = []
    for column in config["columns"]:
        sigma, reg, ns = _column(column, d)
        lam = _lam(problem, reg, ns.astype(float), ps, sigma, exact=True)
        sim = simulate.linear(
            ctx.seed,
            *args,
            n=ns[None, :],
            p=ps[:, None],
            lam=lam,
            sigma1=sigma,
            sigma2=sigma,
            trials=trials,
            **ctx.simulation(column["title"]),
        )
        th = theory.test_error(*args, n=ns[None, :], p=ps[:, None], lam=lam, sigma1=sigma, sigma2=sigma)
        report.solver(th)
        keep = np.stack([_shown(ns.astype(float), p, sigma, d) for p in ps])
        allowance = np.broadcast_to(finite_size_allowance(ns[None, :], d, r0), keep.shape)
        report.compare(sim.mean[keep], sim.sem[keep], np.asarray(th.total)[keep], allowance[keep])
        # Smooth curves use the idealised fraction p (on the compared sizes p·n is a whole number,
        # where the two coincide). The tuned curve's slope is ∂E/∂n at the λ* already found (envelope
        # theorem), so local_slope takes those λ* rather than solving for them again.
        dense = np.geomspace(
            ns.min(), ns.max(), int(check_count("curve_points", config["curve_points"], minimum=2))
        )
        dense_lam = _lam(problem, reg, dense, ps, sigma, exact=False)
        line = np.asarray(
            theory.test_error(
                *args,
                n=dense[None, :],
                p=ps[:, None],
                lam=dense_lam,
                sigma1=sigma,
                sigma2=sigma,
                exact_count=False,
            ).total
        )
        slope_line, _ = scaling.local_slope(
            *args,
            n=dense[None, :],
            p=ps[:, None],
            lam=dense_lam,
            sigma1=sigma,
            sigma2=sigma,
        )
        for i, p in enumerate(ps):
            title, ok, ok_dense = column["title"], keep[i], _shown(dense, p, sigma, d)
            for series, values in (("theory", line[i]), ("theory_slope", np.asarray(slope_line[i]))):
                report.curves.extend(
                    _curve(title, float(p), series, float(x), float(y))
                    for x, y in zip(dense[ok_dense], values[ok_dense])
                )
            if ok.sum() >= 3:
                for s in window_slopes(ns[ok], sim.mean[i][ok], sim.sem[i][ok]):
                    report.curves.append(
                        _curve(title, float(p), "sim_slope", s.center, s.slope, y_low=s.low, y_high=s.high)
                    )
                    measured.append(
                        {
                            "column": title,
                            "p": float(p),
                            "center_n": s.center,
                            "slope": s.slope,
                            "low": s.low,
                            "high": s.high,
                        }
                    )
            if reg == "tuned" and p > 0 and power:
                n_star = float(
                    scaling.crossover(
                        *args,
                        p=p,
                        beta=config["spectrum"]["beta"],
                        source=config["source"],
                        sigma1=sigma,
                        sigma2=sigma,
                    )
                )
                if ns.min() <= n_star <= ns.max():
                    report.curves.append(_curve(title, float(p), "crossover", n_star, ""))
                    report.notes.append(f"{title}, p={p:g}: predicted crossover n* = {n_star:.3g}")
            for j, n in enumerate(ns):
                report.rows.append(
                    {
                        "column": title,
                        "spectrum": json.dumps(config["spectrum"], sort_keys=True),
                        "d": d,
                        "source": config["source"],
                        "n": int(n),
                        "p": float(p),
                        "p_eff": float(th.p_eff[i, j]),
                        "sigma1": sigma,
                        "sigma2": sigma,
                        "regularisation": reg,
                        "lam": float(lam[i, j]),
                        "theory": float(th.total[i, j]),
                        "sim_mean": float(sim.mean[i, j]),
                        "sim_sem": float(sim.sem[i, j]),
                        "trials": trials,
                        "compared": bool(keep[i, j]),
                        # Uncompared cells (see _shown) may be exact zeros: no z-score for them.
                        "z": float((sim.mean[i, j] - th.total[i, j]) / sim.sem[i, j]) if keep[i, j] else "",
                        "converged": bool(th.converged[i, j]),
                    }
                )
    extra = {"predicted_exponents": predicted._asdict() if predicted else None, "measured_slopes": measured}
    return report.finish(ctx, **extra)


def _exponents(curves: Table) -> dict[str, float]:
    """The predicted exponents stored by ``run``, by name (empty unless the spectrum is a power law)."""
    prefix = "exponent "
    return {
        series.removeprefix(prefix): float(curves.where(series=series)["y"][0])
        for series in curves.unique("series")
        if series.startswith(prefix)
    }


def draw(config: dict[str, Any], results: Table, curves: Table) -> Figure:
    """Top row E vs n, bottom row local slopes, one column per config column: theory lines, slopes,
    crossovers and predicted exponents (``curves``), simulation markers ± 2 s.e. (``results``)."""
    columns, ps = results.unique("column"), results.unique("p")
    d, trials = int(results["d"][0]), int(results["trials"][0])
    predicted = _exponents(curves)
    fig, axes = new_figure(2, len(columns), width=4.8, height=3.9)
    palette = colors(len(ps))
    for col, title in enumerate(columns):
        cells, lines = results.where(column=title), curves.where(column=title)
        reg, sigma = cells["regularisation"][0], float(cells["sigma1"][0])
        top, bottom = axes[0, col], axes[1, col]
        for i, p in enumerate(ps):
            sim = cells.where(p=p, compared=True)
            line, slope = lines.where(p=p, series="theory"), lines.where(p=p, series="theory_slope")
            theory_and_simulation(
                top,
                line["x"],
                line["y"],
                sim["n"],
                sim["sim_mean"],
                sim["sim_sem"],
                color=palette[i],
                label=f"p = {p:g}",
            )
            bottom.plot(slope["x"], slope["y"], color=palette[i], lw=1.4)
            for s in lines.where(p=p, series="sim_slope").rows:
                bottom.errorbar(
                    [s["x"]],
                    [s["y"]],
                    yerr=[[s["y"] - s["y_low"]], [s["y_high"] - s["y"]]],
                    fmt="o",
                    ms=4,
                    color=palette[i],
                    mfc="white",
                    capsize=2,
                )
            for n_star in lines.where(p=p, series="crossover")["x"]:
                for ax in (top, bottom):
                    ax.axvline(n_star, color=palette[i], ls=":", lw=1.2)
        if predicted:
            guide = predicted["ridgeless_clean"] if reg == "ridgeless" else predicted["tuned_clean"]
            bottom.axhline(-guide, color="0.3", ls="--", lw=1.0)
            bottom.axhline(-predicted["plateau"], color="0.3", ls="--", lw=0.8)
            if reg == "tuned" and sigma == 0:
                bottom.axhline(-predicted["ridgeless_clean"], color="0.3", ls="--", lw=1.0)
        for ax in (top, bottom):
            ax.set_xscale("log")
            ax.grid(True, which="major", alpha=0.3)
            ax.set_xlabel("sample size n")
        top.set_yscale("log")
        top.set_ylabel("test error on real data")
        bottom.set_ylabel("local slope d log E / d log n")
        bottom.set_ylim(-(predicted["ridgeless_clean"] + 0.6) if predicted else None, 0.3)
        top.set_title(title, fontsize=10)
    handles, _ = axes[0, 0].get_legend_handles_labels()
    keys = [
        Line2D([], [], color="0.3", ls="--", label="predicted exponents (−(β+δ−1), −(β+δ−1)/(β+δ), 0)"),
        Line2D([], [], color="0.5", ls=":", label="predicted crossover n*"),
        Line2D(
            [],
            [],
            color="0.5",
            marker="o",
            mfc="white",
            ls="none",
            label="simulated slope, 3-size windows, 95% interval",
        ),
    ]
    fig.legend(
        handles=handles + legend_keys(2, trials) + keys,
        loc="outside lower center",
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    spectrum = config["spectrum"]
    fig.suptitle(
        f"Scaling laws under synthetic data (Model A, {spectrum['kind']} "
        f"{', '.join(f'{k}={v}' for k, v in spectrum.items() if k != 'kind')}, source δ = {config['source']:g}, "
        f"d = {d}, c² = {config['c2']:g})",
        fontsize=10,
    )
    return fig


EXPERIMENT = Experiment(
    name="scaling",
    summary="power-law scaling of E(n): exponents, the crossover n* and the plateau under synthetic data",
    config=CONFIG,
    quick=QUICK,
    run=run,
    draw=draw,
    validate=validate,
    paper=PAPER,
    claim="Sec. 3.2 and Cor. 1: on a power-law spectrum any synthetic fraction p first turns the fast "
    "noiseless rate of E ∝ n^-a into the noisy one, then flattens it to a plateau beyond the crossover n*.",
)
