"""Training throughput: pairs/s and a step's time split between data and compute.

Usage:
  python benchmarks/train_throughput.py --data MANIFEST [--system cvsm_a] [--device cpu|cuda]
      [--batch 128] [--steps 20] [--warmup 3] [--json OUT.json]
Without --data a small synthetic corpus is generated first. "data" is drawing the pairs and
gathering/mixing the crops on the device; "compute" is log-mel + forward + backward + Adam.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from model.training.config import TrainConfig  # noqa: E402
from model.training.loop import Trainer  # noqa: E402
from model.training.pairs import PairConfig  # noqa: E402


def measure(data: Path, system: str, device: str, batch: int, steps: int, warmup: int,
            cache_dir: Path, amp: bool = True, compile_model: bool = False) -> dict:
    cfg = TrainConfig(name=f"bench-{system}", pairs=PairConfig(system=system), batch_size=batch,
                      steps=10**9, eval_interval=10**9, log_interval=10**9, amp=amp,
                      compile=compile_model)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(cfg, data, Path(out), device=device, cache_dir=cache_dir, quiet=True)
        for _ in range(warmup):
            trainer.train_step()
        start = time.perf_counter()
        records = [trainer.train_step() for _ in range(steps)]
        wall = time.perf_counter() - start
    data_s = statistics.median(r["data_s"] for r in records)
    compute_s = statistics.median(r["compute_s"] for r in records)
    return {
        "system": system, "device": str(trainer.device), "batch": batch, "steps": steps,
        "amp_bf16": amp and trainer.device.type == "cuda", "compile": compile_model,
        "step_s_median": data_s + compute_s, "data_s_median": data_s,
        "compute_s_median": compute_s, "data_share": data_s / (data_s + compute_s),
        "pairs_per_s": batch * steps / wall, "threads": torch.get_num_threads(),
        "gpu": torch.cuda.get_device_name() if trainer.device.type == "cuda" else None,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path)
    ap.add_argument("--system", default="cvsm_a")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "cvsm-cache")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    data = args.data
    if data is None:
        from model.data.synth import generate

        data = generate(Path(tempfile.mkdtemp()) / "synth", singers=4, songs=3, seconds=8.0)
    result = measure(data, args.system, args.device, args.batch, args.steps, args.warmup,
                     args.cache_dir, compile_model=args.compile)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
