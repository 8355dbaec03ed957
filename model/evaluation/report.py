"""Results of one system as DIR/report.md, DIR/results.json and PNG plots (t-SNE, curves),
plus a side-by-side summary when several systems were evaluated in one call."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; GPU machines have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.manifold import TSNE  # noqa: E402

SPAN_ORDER = ("1s", "2s", "5s", "track")
RETRIEVAL_ORDER = ("mix->mix", "vocals->mix", "vocals->vocals")


def _ms(entry: dict, pct: bool = False) -> str:
    """'mean ± std', in percent with one decimal or as a fraction with three."""
    if pct:
        return f"{100 * entry['mean']:.1f} ± {100 * entry['std']:.1f}"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


def _probe_table(title: str, task: dict) -> list[str]:
    lines = [f"## {title}", "", "Accuracy / macro-F1 (%), mean ± std over seeds.", "",
             "| input | " + " | ".join(SPAN_ORDER) + " |", "|---" * (len(SPAN_ORDER) + 1) + "|"]
    for source, spans in task.items():
        cells = [f"{_ms(spans[s]['accuracy'], True)} / {_ms(spans[s]['macro_f1'], True)}"
                 for s in SPAN_ORDER]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    if not task:
        lines.append("| (skipped) |" + " |" * len(SPAN_ORDER))
    return lines + [""]


def _curve_table(curve: dict) -> list[str]:
    lines = ["## Reduced training data (artist ID)", "",
             "Accuracy (%) at 1 s / track level against the share of training tracks.", "",
             "| input | " + " | ".join(f"{k}%" for k in next(iter(curve.values()), {})) + " |"]
    lines.append("|---" * (1 + len(next(iter(curve.values()), {}))) + "|")
    for source, by_frac in curve.items():
        cells = [f"{100 * v['1s']['accuracy']['mean']:.1f} / "
                 f"{100 * v['track']['accuracy']['mean']:.1f}" for v in by_frac.values()]
        lines.append(f"| {source} | " + " | ".join(cells) + " |")
    return lines + [""]


def _context_table(context: dict) -> list[str]:
    lines = ["## Context length", "", "Mean accuracy (%) against input context.", "",
             "| task | input | " + " | ".join(SPAN_ORDER) + " |",
             "|---" * (len(SPAN_ORDER) + 2) + "|"]
    for task, by_source in context.items():
        for source, spans in by_source.items():
            lines.append(f"| {task} | {source} | "
                         + " | ".join(f"{100 * spans[s]:.1f}" for s in SPAN_ORDER) + " |")
    return lines + [""]


def _similarity_table(sim: dict) -> list[str]:
    lines = ["## Artist similarity", "",
             "Episodes of up to 50 artists x 2 tracks (two songs); MNR (0 best) and EER.", "",
             "| input | artists | MNR | EER |", "|---|---|---|---|"]
    for source, m in sim.items():
        lines.append(f"| {source} | {m['artists']['mean']:.0f} | {_ms(m['mnr'])} | "
                     f"{_ms(m['eer'])} |")
    return lines + [""]


def _retrieval_table(ret: dict) -> list[str]:
    lines = ["## Retrieval", "",
             "Every track a query; catalog = tracks of other songs; relevant = same singer.", "",
             "| direction | P@1 | mAP | queries |", "|---|---|---|---|"]
    for name in RETRIEVAL_ORDER:
        if name in ret:
            r = ret[name]
            lines.append(f"| {name} | {r['p_at_1']:.3f} | {r['map']:.3f} | {r['queries']} |")
    return lines + [""]


def markdown(results: dict, plots: list[str]) -> str:
    """The human-readable report; every number also lives in results.json."""
    system, corpus = results["system"], results["corpus"]
    lines = [f"# Evaluation: {system['name']}", "", "## Setup", "",
             f"- system: `{json.dumps(system, default=str)}`",
             f"- data: {results['data']} — {corpus['tracks']} tracks, {len(corpus['artists'])} "
             f"singers, {corpus['songs']} songs, {corpus['minutes']} min, {corpus['chunks']} "
             f"1 s chunks ({corpus['sung_chunks']} with singing)",
             f"- track embedding: {system.get('track_embedding', 'not recorded')}",
             f"- seeds: {results['config']['seeds']}, similarity episodes per seed: "
             f"{results['config']['episodes']}, quick: {results['config'].get('quick')}, "
             f"retrieval only: {results['config'].get('retrieval_only', False)}", ""]
    skipped = results.get("skipped", [])
    lines += [f"- skipped: {s}" for s in skipped] + ([""] if skipped else [])
    if "gender_id" in results:  # absent from a retrieval-only run
        lines += _probe_table("Gender ID", results["gender_id"])
    if "artist_id" in results:
        lines += _probe_table("Artist ID", results["artist_id"])
    if "training_data_curve" in results:
        lines += _curve_table(results["training_data_curve"])
    if "context_curve" in results:
        lines += _context_table(results["context_curve"])
    if "similarity" in results:
        lines += _similarity_table(results["similarity"])
    lines += _retrieval_table(results["retrieval"])
    lines += ["## Plots", ""] + [f"![{p}]({p})" for p in plots] + [""]
    return "\n".join(lines)


def _save(fig: plt.Figure, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def tsne_plot(tracks: np.ndarray, artists: list[str], genders: list[str], path: Path,
              title: str, seed: int = 0) -> None:
    """2-D t-SNE of track embeddings, one panel coloured by singer and one by gender."""
    perplexity = float(max(2.0, min(30.0, (len(tracks) - 1) / 3)))
    points = TSNE(perplexity=perplexity, init="pca", random_state=seed).fit_transform(tracks)
    fig, axes = plt.subplots(1, 2, figsize=(12, 5.5))
    for ax, labels, name in ((axes[0], artists, "singer"), (axes[1], genders, "gender")):
        colours = plt.get_cmap("tab20")  # tab10 (the default cycle) repeats past 10 singers
        for k, label in enumerate(sorted(set(labels))):
            sel = np.array(labels) == label
            ax.scatter(points[sel, 0], points[sel, 1], s=10, label=label or "?",
                       color=colours(k % 20))
        ax.set_title(f"{title}: by {name}")
        ax.legend(fontsize=6, markerscale=1.5, ncol=2 if len(set(labels)) > 12 else 1)
    _save(fig, path)


def curve_plot(curve: dict, path: Path) -> None:
    """Artist-ID accuracy (1 s and track) against the share of training tracks."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for source, by_frac in curve.items():
        x = [float(k) for k in by_frac]
        for span, style in (("1s", "--"), ("track", "-")):
            y = [v[span]["accuracy"]["mean"] for v in by_frac.values()]
            ax.plot(x, y, style, marker="o", label=f"{source}, {span}")
    ax.set(xlabel="training tracks (%)", ylabel="artist ID accuracy", xscale="log")
    ax.legend()
    _save(fig, path)


def context_plot(context: dict, path: Path) -> None:
    """Accuracy against context (1 s, 2 s, 5 s, track) per task and input."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for task, by_source in context.items():
        for source, spans in by_source.items():
            ax.plot(SPAN_ORDER, [spans[s] for s in SPAN_ORDER], marker="o",
                    label=f"{task}, {source}")
    ax.set(xlabel="context", ylabel="accuracy")
    ax.legend()
    _save(fig, path)


def write_report(out: Path, results: dict, tracks: dict[str, np.ndarray], artists: list[str],
                 genders: list[str]) -> list[Path]:
    """Write results.json, the PNGs and report.md into `out`; returns the files written."""
    out.mkdir(parents=True, exist_ok=True)
    plots = []
    for source, emb in tracks.items():
        name = f"tsne_{source}.png"
        tsne_plot(emb, artists, genders, out / name, f"{results['system']['name']} {source}")
        plots.append(name)
    if "training_data_curve" in results:
        curve_plot(results["training_data_curve"], out / "curve_training_data.png")
        plots.append("curve_training_data.png")
    if "context_curve" in results:
        context_plot(results["context_curve"], out / "curve_context.png")
        plots.append("curve_context.png")
    (out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text(markdown(results, plots))
    return [out / "report.md", out / "results.json", *(out / p for p in plots)]


def write_vectors(out: Path, tracks: dict[str, np.ndarray], track_ids: list[str],
                  artists: list[str], songs: list[str]) -> Path:
    """tracks.npz: the scored track vectors with their labels, so a later study (re-ranking,
    pooling) reuses them instead of embedding the corpus again."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "tracks.npz"
    np.savez(path, **tracks, track_ids=np.asarray(track_ids), artists=np.asarray(artists),
             songs=np.asarray(songs))
    return path


def write_summary(out: Path, all_results: list[dict]) -> Path:
    """One table comparing systems evaluated in the same call (headline numbers)."""
    lines = ["# Evaluation summary", "",
             "Track-level accuracy (%) of probes, similarity MNR, retrieval P@1 / mAP "
             "(- where a section was not run).", "",
             "| system | input | gender ID | artist ID | MNR | mix->mix | vocals->mix "
             "| vocals->vocals |", "|---|---|---|---|---|---|---|---|"]
    for r in all_results:
        ret = r["retrieval"]
        p1 = [f"{ret[k]['p_at_1']:.3f} / {ret[k]['map']:.3f}" if k in ret else "-"
              for k in RETRIEVAL_ORDER]
        artist = r.get("artist_id", {})
        for source in artist or ["-"]:
            gender = r.get("gender_id", {}).get(source)
            g = f"{100 * gender['track']['accuracy']['mean']:.1f}" if gender else "-"
            a = (f"{100 * artist[source]['track']['accuracy']['mean']:.1f}"
                 if source in artist else "-")
            sim = r.get("similarity", {}).get(source)
            mnr = f"{sim['mnr']['mean']:.3f}" if sim else "-"
            lines.append(f"| {r['system']['name']} | {source} | {g} | {a} | {mnr} | "
                         + " | ".join(p1) + " |")
    path = out / "summary.md"
    path.write_text("\n".join(lines) + "\n")
    (out / "summary.json").write_text(json.dumps(all_results, indent=2, default=str))
    return path
