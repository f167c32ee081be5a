"""Scale-out (issue: devices, hosts, memory, resume): the numbers do not depend on how a sweep is
split, an interrupted run resumes exactly, and the memory plan matches what XLA allocates.

Several devices are simulated on the CPU with XLA_FLAGS=--xla_force_host_platform_device_count=4,
which must be set before JAX starts: those checks run in a fresh process. Several hosts are two
processes on loopback, joined by jax.distributed (gloo collectives on CPU).
"""

from __future__ import annotations

import csv
import json
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from strongcollapse.simulate import model_a, model_b
from strongcollapse.simulate.engine import plan_chunks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT)] + sys.path), **extra}


FOUR_DEVICES = """
import json, numpy as np, jax, strongcollapse
strongcollapse.enable_x64()
from strongcollapse import Problem
from strongcollapse.simulate import linear, random_projection
assert jax.device_count() == 4
problem = Problem.build({"kind": "power_law", "beta": 1.5}, 40, source=1.5, c2=1.0, corr=0.3)
out = {}
for devices in (1, 2, 4):
    # 7 trials and chunks of 6: chunks and their padding differ with the device count.
    a = linear(3, *problem.arrays(), n=[20, 60, 400], p=0.2, lam=[[0.0], [0.01]], sigma1=0.1, sigma2=0.3,
               trials=7, chunk_size=6, devices=devices)
    b = random_projection(3, *problem.arrays(), n=[30, 100], m=[[5], [30], [80]], p=0.2, lam=0.0, sigma1=0.1,
                          trials=7, chunk_size=6, devices=devices)
    plans = [[p.devices for p in a.plans], [p.chunk_size for p in a.plans]]
    out[devices] = [a.errors.tolist(), b.errors.tolist(), *plans]
print(json.dumps(out))
"""


def test_one_two_and_four_devices_give_the_same_numbers():
    proc = subprocess.run(
        [sys.executable, "-c", FOUR_DEVICES],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(XLA_FLAGS="--xla_force_host_platform_device_count=4"),
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for devices in ("2", "4"):
        for reference, other in zip(out["1"][:2], out[devices][:2]):
            np.testing.assert_allclose(np.asarray(other), np.asarray(reference), rtol=1e-12, atol=0)
        assert set(out[devices][2]) == {int(devices)}
        assert all(size % int(devices) == 0 for size in out[devices][3])  # whole shares per device


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rows(path: pathlib.Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # 30 s: three processes; the sharding itself is in the fast tier (four devices)
def test_two_processes_on_loopback_match_one_process(tmp_path):
    """`strongcollapse --distributed run ...` in two processes (one CPU device each, gloo), only
    process 0 writes, and the numbers equal a single-process run's to 1e-12."""
    single = tmp_path / "single"
    args = ["-m", "strongcollapse", "run", "width", "--quick", "--set", "trials=8"]
    proc = subprocess.run(
        [sys.executable, *args, "--out", str(single)], capture_output=True, text=True, timeout=600, env=_env()
    )
    assert proc.returncode == 0, proc.stderr
    port = _free_port()
    multi = tmp_path / "multi"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "strongcollapse", "--distributed", *args[2:], "--out", str(multi)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(
                JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}", JAX_NUM_PROCESSES="2", JAX_PROCESS_ID=str(i)
            ),
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outputs]
    assert "agreement" in outputs[0][0] and "agreement" not in outputs[1][0]  # process 0 speaks and writes
    meta = json.loads((multi / "meta.json").read_text())
    assert meta["environment"]["devices"] and len(meta["environment"]["devices"]) == 2
    a, b = _rows(single / "results.csv"), _rows(multi / "results.csv")
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert float(y["sim_mean"]) == pytest.approx(float(x["sim_mean"]), rel=1e-12)


@pytest.mark.slow  # 40 s; the fast tier resumes after an in-process interruption (test_simulate_linear)
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path):
    """SIGKILL mid-run (chunks already on disk), rerun the same command: identical CSV, and the
    finished chunks were reused, not recomputed."""
    args = [sys.executable, "-m", "strongcollapse", "run", "strong-collapse", "--quick", "--chunk-size", "4"]
    reference = tmp_path / "reference"
    done = subprocess.run(
        [*args, "--out", str(reference)], capture_output=True, text=True, timeout=600, env=_env()
    )
    assert done.returncode == 0, done.stderr
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*args, "--out", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env()
    )
    deadline = time.time() + 300
    while time.time() < deadline and len(list((killed / "chunks").glob("*.npy"))) < 20:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    finished = len(list((killed / "chunks").glob("*.npy")))
    assert finished >= 20 and not (killed / "results.csv").exists()
    again = subprocess.run(
        [*args, "--out", str(killed)], capture_output=True, text=True, timeout=600, env=_env()
    )
    assert again.returncode == 0, again.stderr
    assert _rows(killed / "results.csv") == _rows(reference / "results.csv")
    assert json.loads((killed / "meta.json").read_text())["chunks"]["reused"] >= finished


@pytest.mark.parametrize("case", ["A sufficient", "A direct", "B direct", "B sufficient"])
def test_memory_estimate_is_within_a_factor_2_of_what_xla_allocates(case):
    """The plan's per-trial estimate × batch against XLA's buffer assignment of the compiled batch
    (temporaries + arguments + outputs, ``memory_analysis``): within a factor 2 (measured 0.8-1.3)."""
    batch = 32
    tasks = {
        "cell": np.arange(batch, dtype=np.uint32),
        "trial": np.arange(batch, dtype=np.uint32),
        "n": np.full(batch, 400.0),
        "count": np.full(batch, 40.0),
        "lam": np.full(batch, 0.01),
        "sigma1": np.full(batch, 0.1),
        "sigma2": np.full(batch, 0.1),
        "projection": np.zeros(batch, np.uint32),
    }
    d = 96
    eigs = np.arange(1, d + 1, dtype=float) ** -1.5
    w1, delta = eigs**0.5, eigs**0.25
    key = jax.random.key(0)
    if case.startswith("A"):
        del tasks["projection"]
        if case == "A sufficient":
            fn, kw = model_a._sufficient_batch, {"dtype": "float64"}
            estimate = model_a._bytes_per_trial("sufficient", 0, d, "float64")
        else:
            fn, kw = model_a._direct_batch, {"n": 300, "dtype": "float64"}
            estimate = model_a._bytes_per_trial("direct", 300, d, "float64")
    else:
        widths = (8, 30, 60, 150)
        n = 50 if case == "B direct" else None
        fn, kw = model_b._batch, {"n": n, "widths": widths, "dtype": "float64"}
        estimate = model_b._bytes_per_trial(n, d, widths, "float64")
    stats = fn.lower(key, eigs, w1, delta, tasks, **kw).compile().memory_analysis()
    allocated = stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes
    assert 0.5 < estimate * batch / allocated < 2.0, (estimate * batch, allocated)


def test_a_sweep_that_cannot_fit_fails_before_running():
    with pytest.raises(ValueError, match="one trial needs about .* more than the memory budget"):
        plan_chunks(100, 10 << 20, memory_budget=1 << 20)
    with pytest.raises(ValueError, match="use chunk_size <= 8"):
        plan_chunks(100, 1 << 20, chunk_size=16, memory_budget=(4 << 20) + 1, devices=2)
    plan = plan_chunks(100, 1 << 20, memory_budget=8 << 20, devices=4)
    assert plan.chunk_size % 4 == 0 and plan.peak_bytes <= 8 << 20
