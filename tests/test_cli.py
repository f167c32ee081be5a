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
        (["run", "strong-collapse", "--seed", "-1"], "seed must be an integer >= 0"),
        (["run", "strong-collapse", "--seed", "x"], "invalid int value"),
        (["run", "strong-collapse", "--set", "n_over_d=[1]"], "n_over_d must avoid 1"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and message in err, err


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
