"""Can an int8 backbone pass the quality gate? Quantisation variants against the fp32 graph.

    python benchmarks/int8_variants.py --out runs/int8_variants.json
    python benchmarks/int8_variants.py --variants ort ort-float-last nncf-real   # a subset

The bundled model's static int8 graph (model/inference/backends.py: ONNX Runtime, QDQ,
per-channel weights, activations calibrated on synthetic singing) fails the gate of
model/inference/quality.py: its vectors stay close (median cosine 0.999) but a track's top-10
neighbours change too often (overlap 0.86 < 0.95). This script asks whether another recipe
passes, on every MIR-1K dev mixture (746 tracks), against the ONNX Runtime fp32 vectors:

- `ort`: the shipped recipe;
- `ort-float-last` / `ort-float-stem-last` / `ort-float-7-8`: the same with the last block
  (the 320->1280 convolution whose output the max pooling reads), the stem, or the last two
  blocks left in float (`nodes_to_exclude`), the usual cure when a few layers carry the error;
- `nncf-synth` / `nncf-real`: OpenVINO's own quantiser (PyPI `nncf`, optional: skipped when
  absent) with fast bias correction, calibrated on the synthetic batch or, as a diagnostic of
  what calibration data is worth, on 16 real MIR-1K tracks (a shipped graph could not use those:
  no data set is available where graphs are built).

Per variant: the gate's record (cosine min/median, top-10 overlap, mAP against the reference's).
Then, once every variant is built, all of them and the two fp32 runtimes run one 30-chunk batch
(the size of a 30 s query) in turns, round by round (selection.time_runners; medians of 15, three
rounds): would a variant that passed even be faster here?
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fast_paths import embed_all, mixtures  # noqa: E402

from model.audio.signal import chunk  # noqa: E402
from model.inference import backends, quality  # noqa: E402
from model.inference.backends import Runner, ort_runner  # noqa: E402
from model.inference.embedder import Embedder  # noqa: E402
from model.inference.openvino_backend import ov_runner  # noqa: E402
from model.inference.selection import cpu_signature, probe_batch, time_runners  # noqa: E402
from model.weights import default_checkpoint  # noqa: E402

#: ONNX node-name patterns left in float, per ONNX Runtime variant.
ORT_FLOAT = {"ort": [], "ort-float-last": ["features.8"],
             "ort-float-stem-last": ["features.0/", "features.8"],
             "ort-float-7-8": ["features.7", "features.8"]}
NNCF = ("nncf-synth", "nncf-real")


def ort_int8(fp32: Path, out: Path, patterns: list[str]) -> Path:
    """The shipped static recipe, with the nodes matching `patterns` left in float."""
    backends.quantize_graph(fp32, out, float_nodes=patterns)
    return out


def nncf_int8(fp32: Path, out: Path, calibration: np.ndarray) -> Path:
    """OpenVINO's post-training quantisation (default preset, fast bias correction)."""
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    ov.save_model(nncf.quantize(model, dataset, subset_size=len(calibration)), str(out))
    return out


def real_logmel(embedder: Embedder, waves: list[np.ndarray], tracks: int = 16) -> np.ndarray:
    pick = np.random.default_rng(0).choice(len(waves), tracks, replace=False)
    with torch.inference_mode():
        return embedder.features(np.concatenate([chunk(waves[i]) for i in pick])).numpy()


def build(name: str, fp32: Path, work: Path, synth: np.ndarray,
          real: Callable[[], np.ndarray]) -> Runner:
    if name in ORT_FLOAT:
        return ort_runner(ort_int8(fp32, work / f"{name}.onnx", ORT_FLOAT[name]), 2)
    data = real() if name == "nncf-real" else synth
    return ov_runner(nncf_int8(fp32, work / f"{name}.xml", data), 2)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data/mir1k-dev"))
    p.add_argument("--variants", nargs="+", default=[*ORT_FLOAT, *NNCF],
                   choices=[*ORT_FLOAT, *NNCF])
    p.add_argument("--work", type=Path, default=Path("runs/int8_variants"))
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    torch.set_num_threads(2)
    args.work.mkdir(parents=True, exist_ok=True)
    waves, artists, songs = mixtures(args.data)
    embedder = Embedder.from_checkpoint(default_checkpoint(), "cpu", backend="onnx", threads=2)
    fp32 = backends.ensure_graph(embedder.model.backbone, embedder.fingerprint,
                                 default_checkpoint())
    reference = embed_all(embedder, waves, "onnx fp32")
    synth, cached = backends.calibration_logmel(), {}

    def real() -> np.ndarray:
        if "real" not in cached:
            cached["real"] = real_logmel(embedder, waves)
        return cached["real"]

    report = {"cpu": cpu_signature(), "fingerprint": embedder.fingerprint, "variants": {}}
    runners = {"onnx-fp32": ort_runner(fp32, 2), "openvino-fp32": ov_runner(fp32, 2)}
    for name in args.variants:
        if name in NNCF and not _has("nncf"):
            print(f"{name}: skipped (pip install nncf)")
            continue
        start = time.perf_counter()
        embedder.runner = runners[name] = build(name, fp32, args.work, synth, real)
        record = quality.gate(reference, embed_all(embedder, waves, name), artists, songs)
        record["seconds"] = round(time.perf_counter() - start, 1)
        report["variants"][name] = record
        print(name, json.dumps(record), flush=True)
    report["ms_per_30_chunks"] = [time_runners(runners, probe_batch(), 15) for _ in range(3)]
    print("ms per 30 chunks:", *report["ms_per_30_chunks"], sep="\n  ")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=1))


def _has(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
