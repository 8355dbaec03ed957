"""Render the six-system comparison (docs/results.md) from `cvsm evaluate` results.json files.

Usage: python benchmarks/fold_table.py runs/eval_fold
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ["cv_cola", "cv_cola_art", "cv_mscol", "cv_cvsm_art", "cv_cvsm_a", "cv_cvsm_ah", "mfcc",
         "resemblyzer", "random"]
NAMES = {"cv_cola": "COLA", "cv_cola_art": "COLA-ART", "cv_mscol": "MSCOL",
         "cv_cvsm_art": "CVSM-ART", "cv_cvsm_a": "CVSM-A", "cv_cvsm_ah": "CVSM-AH (default)",
         "mfcc": "MFCC mean+std", "resemblyzer": "Resemblyzer (1 s chunks)",
         "random": "B0 random init"}


def pm(stat: dict, scale: float = 100.0) -> str:
    return f"{stat['mean'] * scale:.1f} ± {stat['std'] * scale:.1f}"


def ms(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def main(folder: Path) -> None:
    rows = {name: json.loads((folder / name / "results.json").read_text())
            for name in ORDER if (folder / name / "results.json").is_file()}
    print("| system | mix->mix P@1 / mAP | vocals->mix P@1 / mAP | vocals->vocals P@1 / mAP |")
    print("| --- | --- | --- | --- |")
    for name, r in rows.items():
        cells = [f"{r['retrieval'][d]['p_at_1']:.3f} / {r['retrieval'][d]['map']:.3f}"
                 for d in ("mix->mix", "vocals->mix", "vocals->vocals")]
        print(f"| {NAMES[name]} | " + " | ".join(cells) + " |")
    print()
    print("| system | input | gender track | artist 1 s | artist 5 s | artist track "
          "| artist track macro-F1 | MNR | EER |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in rows.items():
        for inp in ("mixture", "vocals"):
            g, a, s = r["gender_id"][inp], r["artist_id"][inp], r["similarity"][inp]
            print(f"| {NAMES[name]} | {inp} | {pm(g['track']['accuracy'])} | "
                  f"{pm(a['1s']['accuracy'])} | {pm(a['5s']['accuracy'])} | "
                  f"{pm(a['track']['accuracy'])} | {pm(a['track']['macro_f1'])} | "
                  f"{ms(s['mnr'])} | {ms(s['eer'])} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
