"""The command line: list, config, the strong-collapse experiment in --quick form, errors, resume."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from strongcollapse.orchestration.cli import main

EXPECTED_COLUMNS = {
    "panel",
    "n",
    "p",
    "p_eff",
    "regularisation",
    "lam",
    "theory",
    "sim_mean",
    "sim_sem",
    "trials",
    "z",
    "rel_err",
    "method",
    "converged",
}


def _cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run(
        [sys.executable, "-m", "strongcollapse", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=600,
    )


def _rows(path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_list_names_the_experiments(capsys):
    assert main(["list"]) == 0
    assert "strong-collapse" in capsys.readouterr().out


def test_config_applies_quick_and_set(capsys):
    assert (
        main(
            [
                "config",
                "strong-collapse",
                "--quick",
                "--set",
                "trials=7",
                "--set",
                "panels.1.spectrum.beta=2.5",
                "--seed",
                "9",
            ]
        )
        == 0
    )
    config = json.loads(capsys.readouterr().out)
    assert config["trials"] == 7 and config["panels"][1]["spectrum"]["beta"] == 2.5 and config["seed"] == 9
    assert config["d"] == 40  # the --quick override


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown experiment 'nope'"),
        (["run", "strong-collapse", "--set", "p=[0.1,1.5]"], "p must be in [0, 1], got 1.5"),
        (["run", "strong-collapse", "--set", "trials=1"], "trials must be an integer >= 2"),
        (["run", "strong-collapse", "--set", "nosuchkey=1"], "has no 'nosuchkey'"),
        (["run", "strong-collapse", "--set", "trials"], "--set expects key=value"),
        (["run", "strong-collapse", "--seed", "-1"], "seed must be an integer in [0, 2**63 - 1], got -1"),
        (["run", "strong-collapse", "--seed", "x"], "invalid int value"),
        (["run", "strong-collapse", "--set", "n_over_d=[1]"], "n_over_d must avoid 1"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err


# Issue "One command reproduces everything", item 5: each case a new user tried, now one line and
# exit code 2 before any computing (no chunk is written).
LISTED_BAD_INPUT = {
    "seed-not-a-number": (["run", "strong-collapse", "--set", "seed=abc"], "seed must be an integer in [0, 2**63 - 1]"),
    "seed-too-large": (["run", "strong-collapse", "--seed", "99999999999999999999"], "seed must be an integer in [0, 2**63 - 1]"),
    "memory-budget-inf": (["run", "strong-collapse", "--memory-budget", "inf"], "--memory-budget must be a number of MiB in (0, 2**40)"),
    "memory-budget-nan": (["run", "width", "--memory-budget", "nan"], "--memory-budget must be a number of MiB"),
    "devices-zero": (["run", "width", "--devices", "0"], "--devices must be an integer >= 1"),
    "list-for-scalar-d": (["run", "scaling-width", "--set", "d=[100,200]"], "d must be an integer, got [100, 200]"),
    "list-for-scalar-trials": (["run", "strong-collapse", "--set", "trials=[2,3]"], "trials must be an integer, got [2, 3]"),
    "string-in-number-list": (["run", "strong-collapse", "--set", 'p=[0.1,"x"]'], "p.1 must be a number"),
    "npz-spectrum": (["run", "strong-collapse", "--set", 'panels.1.spectrum={"kind":"from_eigenvalues","path":"{tmp}/e.npz"}'], "a .npz archive"),
    "text-spectrum": (["run", "strong-collapse", "--set", 'panels.1.spectrum={"kind":"from_eigenvalues","path":"{tmp}/e.txt"}'], "must name a .npy file written by numpy.save"),
    "short-spectrum-last-panel": (["run", "strong-collapse", "--set", 'panels.1.spectrum={"kind":"from_eigenvalues","path":"{tmp}/short.npy"}'], "d must equal the number of given eigenvalues (7), got 40"),
    "import-syntax-error": (["--import", "{tmp}/syntax.py", "list"], "--import '{tmp}/syntax.py' failed: line 1: SyntaxError"),
    "import-raises": (["--import", "{tmp}/raises.py", "list"], "failed: RuntimeError: boom"),
    "bench-json-is-a-folder": (["bench", "--quick", "--json", "{tmp}"], "--json must name a file, got the folder"),
    "plot-not-a-run": (["plot", "{tmp}"], "RUN_DIR must be a folder written by `strongcollapse run`"),
    "reproduce-unknown-only": (["reproduce", "--only", "strong-collapse,nope"], "--only must be a comma-separated list"),
}


@pytest.mark.parametrize("case", sorted(LISTED_BAD_INPUT))
def test_listed_bad_input_fails_in_one_line_before_computing(case, tmp_path, capsys):
    np = pytest.importorskip("numpy")
    np.save(tmp_path / "short.npy", np.ones(7))
    np.savez(tmp_path / "e.npz", eigs=np.ones(40))
    (tmp_path / "e.txt").write_text("1 2 3\n")
    (tmp_path / "syntax.py").write_text("def (:\n")
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom')\n")
    args, message = LISTED_BAD_INPUT[case]
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    out = tmp_path / "out"
    if args[0] in ("run", "reproduce"):
        args += ["--quick", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message.replace("{tmp}", str(tmp_path)) in err, err
    assert not (out / "chunks").exists() or not any((out / "chunks").iterdir())  # nothing computed


def test_debug_shows_the_traceback_of_bad_input(tmp_path):
    (tmp_path / "raises.py").write_text("raise RuntimeError('boom')\n")
    with pytest.raises(RuntimeError, match="boom"):
        main(["--debug", "--import", str(tmp_path / "raises.py"), "list"])


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    proc = _cli("run", "strong-collapse", "--quick", "--set", "sigma1=-1", "--out", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "strongcollapse: error: sigma1 must be >= 0 (finite), got -1.0"


def test_quick_experiment_writes_outputs_and_a_rerun_reuses_every_chunk(tmp_path):
    out = tmp_path / "run"
    proc = _cli("run", "strong-collapse", "--quick", "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "agreement:" in proc.stdout and "(all within)" in proc.stdout, proc.stdout
    for name in ["results.csv", "meta.json", "strong-collapse.png", "strong-collapse.pdf"]:
        assert (out / name).stat().st_size > 0, name
    rows = _rows(out / "results.csv")
    assert all(float(row["p"]) >= 0 and float(row["sim_mean"]) > 0 for row in rows)  # plain numbers
    assert len(rows) == 2 * 2 * 5 * 5 and EXPECTED_COLUMNS <= set(rows[0])
    meta = json.loads((out / "meta.json").read_text())
    assert meta["status"] == "finished" and meta["environment"]["x64"] is True
    assert meta["agreement"]["ok"] and meta["convergence"]["all_converged"]
    assert meta["chunks"]["written"] > 0 and meta["config_hash"]

    again = _cli("run", "strong-collapse", "--quick", "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    meta2 = json.loads((out / "meta.json").read_text())
    assert meta2["chunks"] == {"reused": meta["chunks"]["written"], "written": 0}
    assert _rows(out / "results.csv") == rows
