"""The house: experiments as plugins, `reproduce` and its report page, `plot`, the compile cache.

A tiny plugin experiment (a real theory-vs-simulation comparison at 4 cells, 40 trials) stands in
for the paper's experiments, which test_experiments.py runs; here it is installed the way any
third-party package would be, as a distribution with an entry point on sys.path.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from strongcollapse.orchestration.cli import main
from strongcollapse.orchestration.registry import GROUP

PLUGIN = '''
"""A third-party experiment: Model A at four sample sizes, theory lines through simulation markers."""
import numpy as np
from matplotlib.figure import Figure

import strongcollapse.simulate as simulate
from analytic import linear as theory
from strongcollapse import Problem
from strongcollapse.analysis.compare import finite_size_allowance
from strongcollapse.orchestration.plotting import legend_keys, new_figure, theory_and_simulation
from strongcollapse.orchestration.report import Report
from strongcollapse.orchestration.runner import Experiment
from strongcollapse.vocabulary.validation import check_count

CONFIG = {"seed": 0, "d": 20, "n": [40, 80, 160, 320], "p": 0.2, "trials": 40}


def validate(config):
    check_count("trials", config["trials"], minimum=2)


def run(config, ctx):
    problem = Problem.build({"kind": "isotropic"}, config["d"], c2=1.0)
    n = np.asarray(config["n"])
    th = theory.test_error(*problem.arrays(), n=n, p=config["p"], lam=0.01, sigma1=0.1, sigma2=0.1)
    sim = simulate.linear(ctx.seed, *problem.arrays(), n=n, p=config["p"], lam=0.01, sigma1=0.1,
                          sigma2=0.1, trials=config["trials"], **ctx.simulation("toy"))
    report = Report(r_text="2% + 1/|n-d|")
    report.compare(sim.mean, sim.sem, th.total, finite_size_allowance(n, config["d"], 0.02))
    report.solver(th)
    for i, size in enumerate(n):
        report.rows.append({"n": int(size), "theory": float(th.total[i]), "sim_mean": float(sim.mean[i]),
                            "sim_sem": float(sim.sem[i]), "trials": config["trials"]})
    dense = np.geomspace(40, 320, 30)
    line = theory.test_error(*problem.arrays(), n=dense, p=config["p"], lam=0.01, sigma1=0.1, sigma2=0.1)
    report.curves.extend({"n": float(x), "theory": float(y)} for x, y in zip(dense, line.total))
    return report.finish(ctx)


def draw(config, results, curves):
    fig, axes = new_figure(1, 1)
    theory_and_simulation(axes[0, 0], curves["n"], curves["theory"], results["n"], results["sim_mean"],
                          results["sim_sem"], color="C0", label="p = 0.2")
    axes[0, 0].legend(handles=legend_keys(2, config["trials"]))
    axes[0, 0].set_xlabel("n")
    return fig


EXPERIMENT = Experiment(name="toy-plugin", summary="a third-party experiment", config=CONFIG,
                        quick={"trials": 20}, run=run, draw=draw, validate=validate,
                        paper="A. Nonymous, A toy paper (2026)", claim="Model A agrees with its simulation.")
'''


@pytest.fixture()
def plugin_path(tmp_path: pathlib.Path) -> pathlib.Path:
    """A folder holding an installed-looking distribution whose entry point registers toy-plugin."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "toy_plugin.py").write_text(PLUGIN, encoding="utf-8")
    info = site / "toy_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-plugin\nVersion: 0.1\n", encoding="utf-8")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\ntoy-plugin = toy_plugin:EXPERIMENT\n", encoding="utf-8")
    return site


@pytest.fixture()
def with_plugin(plugin_path, monkeypatch):
    monkeypatch.syspath_prepend(str(plugin_path))
    yield plugin_path
    sys.modules.pop("toy_plugin", None)


def _cli(*args: str, extra_path: pathlib.Path | None = None, cwd=None, env=None) -> subprocess.CompletedProcess:
    paths = ([str(extra_path)] if extra_path else []) + sys.path
    return subprocess.run(
        [sys.executable, "-m", "strongcollapse", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(paths), **(env or {})},
        timeout=600,
    )


def test_an_installed_plugin_is_listed_and_run_by_the_cli(plugin_path, tmp_path):
    listed = _cli("list", extra_path=plugin_path)
    assert listed.returncode == 0, listed.stderr
    assert "toy-plugin" in listed.stdout and "strong-collapse" in listed.stdout
    out = tmp_path / "toy"
    ran = _cli("run", "toy-plugin", "--quick", "--out", str(out), extra_path=plugin_path)
    assert ran.returncode == 0, ran.stderr
    assert "(all within)" in ran.stdout
    assert {"results.csv", "curves.csv", "meta.json", "toy-plugin.png"} <= {p.name for p in out.iterdir()}


def test_import_file_can_register_an_experiment(plugin_path, tmp_path, capsys):
    code = tmp_path / "mine.py"
    code.write_text(
        PLUGIN.replace('name="toy-plugin"', 'name="my-own"')
        + "\nfrom strongcollapse.orchestration.registry import register_experiment\nregister_experiment(EXPERIMENT)\n",
        encoding="utf-8",
    )
    assert main(["--import", str(code), "list"]) == 0
    assert "my-own" in capsys.readouterr().out


def test_reproduce_runs_keeps_finished_work_and_writes_the_report(with_plugin, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["reproduce", "--quick", "--only", "toy-plugin", "--out", str(out)]) == 0
    first = capsys.readouterr().out
    assert "(all within)" in first
    page = (out / "index.html").read_text(encoding="utf-8")
    for text in ("toy-plugin", "A toy paper", "Model A agrees", "strongcollapse run toy-plugin --quick",
                 "data:image/png;base64,", "4/4", "Environment", "jaxlib"):
        assert text in page, text
    assert "toy-plugin" in (out / "REPORT.md").read_text(encoding="utf-8")
    # A second reproduce keeps the finished run (same config hash) and computes nothing.
    stamp = (out / "toy-plugin" / "meta.json").stat().st_mtime_ns
    assert main(["reproduce", "--quick", "--only", "toy-plugin", "--out", str(out)]) == 0
    assert "finished earlier" in capsys.readouterr().out
    assert (out / "toy-plugin" / "meta.json").stat().st_mtime_ns == stamp
    # A changed config reruns; its Monte Carlo chunks differ (other trials), so they are computed.
    assert main(["reproduce", "--quick", "--only", "toy-plugin", "--out", str(out), "--set", "trials=21"]) == 0
    assert json.loads((out / "toy-plugin" / "meta.json").read_text())["config"]["trials"] == 21


def test_plot_redraws_the_figure_from_the_csv_alone(with_plugin, tmp_path, capsys):
    out = tmp_path / "toy"
    assert main(["run", "toy-plugin", "--quick", "--out", str(out)]) == 0
    for figure in out.glob("toy-plugin.*"):
        figure.unlink()
    shutil.rmtree(out / "chunks")  # nothing to resume from: plot must not compute
    assert main(["plot", str(out)]) == 0
    assert (out / "toy-plugin.png").stat().st_size > 10_000 and (out / "toy-plugin.pdf").is_file()
    # Redrawing follows the CSV: an edited value changes the figure, nothing is recomputed.
    before = (out / "toy-plugin.png").read_bytes()
    text = (out / "results.csv").read_text().splitlines()
    cells = text[1].split(",")
    cells[2] = repr(float(cells[2]) * 3)  # sim_mean of the first row
    (out / "results.csv").write_text("\n".join([text[0], ",".join(cells), *text[2:]]) + "\n")
    assert main(["plot", str(out)]) == 0
    assert (out / "toy-plugin.png").read_bytes() != before


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_the_report_page_renders_in_headless_chromium(with_plugin, tmp_path, capsys):
    """The page opens offline in a real browser: a screenshot with the embedded figure in it."""
    out = tmp_path / "report"
    assert main(["reproduce", "--quick", "--only", "toy-plugin", "--out", str(out)]) == 0
    shot = tmp_path / "page.png"
    proc = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1200,1600", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert shot.is_file(), proc.stderr
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] == 1600 and pixels.shape[1] == 1200
    # Not a blank page: text and the figure's lines make many distinct colours.
    flat = (pixels[..., :3] * 255).astype(int).reshape(-1, 3)
    assert len({tuple(p) for p in flat[:: 97]}) > 50


def test_a_second_process_loads_compiled_code_from_the_cache(tmp_path):
    """The persistent compilation cache: the first process writes executables, the second reads
    them back (JAX's own log says 'cache hit') instead of compiling."""
    script = (
        "import logging, strongcollapse\n"
        "from strongcollapse.orchestration.compile_cache import enable_compile_cache\n"
        "strongcollapse.enable_x64()\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "logging.getLogger('jax._src.compiler').setLevel(logging.DEBUG)\n"
        f"enable_compile_cache({str(tmp_path / 'cache')!r})\n"
        "from strongcollapse import Problem\n"
        "from strongcollapse.simulate import linear\n"
        "p = Problem.build({'kind': 'isotropic'}, 12, c2=1.0)\n"
        "print(float(linear(0, *p.arrays(), n=30, p=0.1, lam=0.1, sigma1=0.1, trials=4).mean))\n"
    )
    runs = [
        subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        for _ in range(2)
    ]
    assert all(r.returncode == 0 for r in runs), runs[0].stderr[-2000:]
    assert runs[0].stdout == runs[1].stdout  # the cached executable computes the same numbers
    assert any((tmp_path / "cache").iterdir())
    hits = [r.stderr.lower().count("cache hit") for r in runs]
    assert hits[1] > hits[0], hits


def test_compile_cache_location_and_off_switch(tmp_path, monkeypatch):
    from strongcollapse.orchestration.compile_cache import default_cache_dir

    monkeypatch.delenv("STRONGCOLLAPSE_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / "strongcollapse" / "jax"
    monkeypatch.setenv("STRONGCOLLAPSE_COMPILE_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"
    monkeypatch.setenv("STRONGCOLLAPSE_COMPILE_CACHE", "off")
    assert default_cache_dir() is None
