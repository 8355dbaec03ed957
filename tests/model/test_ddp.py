"""DDP on CPU (gloo): two torchrun processes train in lockstep, from a cold stem cache, and a
time-boxed run stops every process at the same step instead of hanging."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from model.encoder import CVSMModel
from model.training.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
           "2", *args]
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT),
           "HOME": str(Path.home())}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_two_processes_stay_in_lockstep(synth_manifest: Path, tmp_path: Path) -> None:
    """Cold cache (one process decodes, the other waits), 3 steps on different pairs per rank:
    identical weights on both ranks, moved from their shared initialisation, so gradients were
    averaged."""
    out = tmp_path / "run"
    done = torchrun(str(ROOT / "tests" / "model" / "ddp_worker.py"), str(synth_manifest), str(out),
                    str(tmp_path / "cache"), "3", "0")
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] == 3
    # Weights agree exactly; BatchNorm statistics are rank 0's, broadcast before each forward,
    # so they differ only by each rank's last local update (rank 0's are the ones saved).
    weights = [k for k in ranks[0]["model"] if "running_" not in k and "batches_tracked" not in k]
    assert len(weights) > 100
    for name in weights:
        assert torch.equal(ranks[0]["model"][name], ranks[1]["model"][name]), name
    saved = torch.load(out / "last.pt", weights_only=False)  # written by rank 0 only
    assert saved["step"] == 3
    assert all(torch.equal(v, ranks[0]["model"][k]) for k, v in saved["model"].items())
    torch.manual_seed(0)  # the trainer's seeded initialisation: training moved the weights
    init = CVSMModel(TrainConfig().bilinear_std).state_dict()
    assert any(not torch.equal(init[k], ranks[0]["model"][k]) for k in weights)


def test_time_box_stops_all_processes_together(synth_manifest: Path, tmp_path: Path) -> None:
    """`cvsm train --max-minutes` under torchrun ends (no rank left in an all-reduce) with one
    checkpoint at a step both processes reached."""
    out = tmp_path / "run"
    done = torchrun("-m", "app.cli", "train", "--config", "configs/cvsm_a.toml", "--data",
                    str(synth_manifest), "--out", str(out), "--device", "cpu", "--steps",
                    "100000", "--batch-size", "4", "--eval-interval", "1000", "--max-minutes",
                    "0.05", "--cache-dir", str(tmp_path / "cache"), "--workers", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    state = torch.load(out / "last.pt", weights_only=False)
    assert 0 < state["step"] < 100000
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert lines and all('"step"' in line for line in lines)  # one writer: whole lines only
