"""Render the six-system comparison (docs/results.md) from `cvsm evaluate` results.json files.

Usage: python benchmarks/fold_table.py runs/eval_fold
(benchmarks/ablation_table.py reuses `load_systems` and `retrieval_cell` for several folds.)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ORDER = ["cv_cola", "cv_cola_art", "cv_mscol", "cv_cvsm_art", "cv_cvsm_a", "cv_cvsm_ah", "mfcc",
         "resemblyzer", "resemblyzer-utterance", "random"]
NAMES = {"cv_cola": "COLA", "cv_cola_art": "COLA-ART", "cv_mscol": "MSCOL",
         "cv_cvsm_art": "CVSM-ART", "cv_cvsm_a": "CVSM-A", "cv_cvsm_ah": "CVSM-AH (default)",
         "mfcc": "MFCC mean+std", "resemblyzer": "Resemblyzer (1 s chunks)",
         "resemblyzer-utterance": "Resemblyzer (whole track, embed_utterance)",
         "random": "B0 random init"}
DIRECTIONS = ("mix->mix", "vocals->mix", "vocals->vocals")


def pm(stat: dict, scale: float = 100.0) -> str:
    return f"{stat['mean'] * scale:.1f} ± {stat['std'] * scale:.1f}"


def ms(stat: dict) -> str:
    return f"{stat['mean']:.3f} ± {stat['std']:.3f}"


def load_systems(folder: Path) -> dict[str, dict]:
    """results.json of every system in `folder` (one subfolder per system, as `cvsm evaluate`
    writes with several systems; or the folder itself for a single system), known systems in
    ORDER first, then the rest by name."""
    found: dict[str, dict] = {}
    if (folder / "results.json").is_file():
        r = json.loads((folder / "results.json").read_text())
        found[r.get("system", {}).get("name", folder.name)] = r
    for sub in sorted(p for p in folder.iterdir() if (p / "results.json").is_file()):
        found[sub.name] = json.loads((sub / "results.json").read_text())
    rank = {name: i for i, name in enumerate(ORDER)}
    return dict(sorted(found.items(), key=lambda kv: (rank.get(kv[0], len(ORDER)), kv[0])))


def display(name: str) -> str:
    return NAMES.get(name, name)


def retrieval_cell(retrieval: dict | None, direction: str) -> str:
    """'P@1 / mAP' of one direction, '-' when it was not measured."""
    if not retrieval or direction not in retrieval:
        return "-"
    return f"{retrieval[direction]['p_at_1']:.3f} / {retrieval[direction]['map']:.3f}"


def main(folder: Path) -> None:
    rows = load_systems(folder)
    print("| system | mix->mix P@1 / mAP | vocals->mix P@1 / mAP | vocals->vocals P@1 / mAP |")
    print("| --- | --- | --- | --- |")
    for name, r in rows.items():
        cells = [retrieval_cell(r["retrieval"], d) for d in DIRECTIONS]
        print(f"| {display(name)} | " + " | ".join(cells) + " |")
    probed = {name: r for name, r in rows.items() if "artist_id" in r}  # not retrieval-only
    if not probed:
        return
    print()
    print("| system | input | gender track | artist 1 s | artist 5 s | artist track "
          "| artist track macro-F1 | MNR | EER |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, r in probed.items():
        for inp in ("mixture", "vocals"):
            g, a, s = r["gender_id"][inp], r["artist_id"][inp], r["similarity"][inp]
            print(f"| {display(name)} | {inp} | {pm(g['track']['accuracy'])} | "
                  f"{pm(a['1s']['accuracy'])} | {pm(a['5s']['accuracy'])} | "
                  f"{pm(a['track']['accuracy'])} | {pm(a['track']['macro_f1'])} | "
                  f"{ms(s['mnr'])} | {ms(s['eer'])} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
