"""Pack MIR-1K dev for a lent GPU machine: Opus 24 kbps stems + activity + manifest (~35 MB).

The device tool carries at most 64 MiB of working tree and the machine cannot see ../shared;
Opus keeps the stems transparent enough for training (about 25 dB SNR) at a tenth of WAV size.
Usage: python benchmarks/gpu/pack_mir1k.py ../shared/data/mir1k-dev .gpu/mir1k
"""

from __future__ import annotations

import csv
import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from model.audio.decode import load
from model.audio.encode import encode


def _pack(job: tuple[Path, Path]) -> None:
    src, dst = job
    dst.write_bytes(encode(load(src, allow_silent=True), 16_000, "opus", bit_rate=24_000))


def main(src: Path, dst: Path) -> None:
    (dst / "audio").mkdir(parents=True, exist_ok=True)
    (dst / "vocal-nonvocal").mkdir(exist_ok=True)
    rows = list(csv.DictReader((src / "clips.csv").open()))
    jobs = []
    for row in rows:
        for col in ("vocals", "accompaniment"):
            out = Path(row[col]).with_suffix(".opus")
            jobs.append((src / row[col], dst / out))
            row[col] = str(out)
        shutil.copy(src / row["vocal_activity"], dst / row["vocal_activity"])
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_pack, jobs, chunksize=16))
    with (dst / "clips.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
