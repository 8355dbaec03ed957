"""How much does the speaker encoder's window decide? (docs/results.md, "Context windows")

Scores a voice-LSTM (the teacher, or a `cvsm train` checkpoint of arch voice-lstm) on a fold's
unseen singers. Track embeddings are the mean over windows of `--win` seconds every `--hop`
seconds of the block-normalised clip (the CVSM level; VoiceMel lifts it by CHUNK_GAIN); with
`--sung`, only windows whose centre second is sung (the manifest's vocal activity), as the
harness pools CVSM's chunks. Outside the product on purpose: any window and hop, where the
product is tied to one vector per second.

    python benchmarks/voice_window_eval.py --fold A --data MIR1K_DEV/clips.csv --sung \
        --ckpt teacher runs/voice/A/last.pt --win 1 2 --hop 1 1 --out runs/win/A.json
"""
import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from model.audio.signal import SAMPLE_RATE, l2_normalise, normalise_blocks
from model.audio.voice_mel import VoiceMel
from model.checkpoint import frame_pool_of
from model.evaluation.data import load_corpus
from model.evaluation.folds import fold_singers
from model.evaluation.run import EvalConfig, score_system
from model.training.teacher import pretrained_backbone_state
from model.voice_encoder import VoiceBackbone


@dataclass
class Windowed:
    name: str
    backbone: VoiceBackbone
    win: float
    hop: float
    voiced: dict[int, np.ndarray] | None = None
    standardise: bool = False
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.mel = VoiceMel()

    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _windows(self, wave: np.ndarray) -> np.ndarray:
        w, h = int(self.win * SAMPLE_RATE), int(self.hop * SAMPLE_RATE)
        wave = normalise_blocks(wave.astype(np.float32))
        if len(wave) < w:
            wave = np.pad(wave, (0, w - len(wave)))
        starts = list(range(0, len(wave) - w + 1, h))
        if len(wave) - (starts[-1] + w) >= h // 2:  # a last window covering the tail
            starts.append(len(wave) - w)
        return np.stack([wave[s:s + w] for s in starts])

    @torch.inference_mode()
    def embed_tracks(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        if not waves:
            return []
        wins = [self._windows(w) for w in waves]
        stacked = torch.from_numpy(np.concatenate(wins))
        emb = np.concatenate([self.backbone(self.mel(stacked[i:i + 256])).numpy()
                              for i in range(0, len(stacked), 256)])
        bounds = np.cumsum([0] + [len(x) for x in wins])
        out = []
        for wave, a, b in zip(waves, bounds[:-1], bounds[1:], strict=True):
            e = emb[a:b]
            if self.voiced is not None:
                keep = self._sung(wave, b - a)
                e = e[keep] if keep.any() else e
            out.append(e.mean(0))
        return list(l2_normalise(np.stack(out)))

    def _sung(self, wave: np.ndarray, n: int) -> np.ndarray:
        """A window counts as sung when the 1 s chunk under its centre is."""
        flags = self.voiced[id(wave)]
        w, h = int(self.win * SAMPLE_RATE), int(self.hop * SAMPLE_RATE)
        starts = [min(i * h, max(len(wave), w) - w) for i in range(n)]
        if n > 1 and len(wave) >= w and starts[-1] != (n - 1) * h:
            starts[-1] = len(wave) - w
        centre = [min((s + w // 2) // SAMPLE_RATE, len(flags) - 1) for s in starts]
        return flags[centre].astype(bool)


def backbone_from(ck: str) -> VoiceBackbone:
    data = ({"model": pretrained_backbone_state()} if ck == "teacher"
            else torch.load(ck, map_location="cpu", weights_only=False))
    bb = VoiceBackbone(frame_pool_of(data.get("config", {})))
    state = data["model"]
    bb.load_state_dict({k[len("backbone."):]: v.float() for k, v in state.items()
                        if k.startswith("backbone.")})
    return bb.eval()


p = argparse.ArgumentParser()
p.add_argument("--fold", required=True)
p.add_argument("--data", required=True)
p.add_argument("--ckpt", nargs="+", default=["teacher"])
p.add_argument("--win", type=float, nargs="+", default=[1.0, 1.6, 2.0, 3.0])
p.add_argument("--hop", type=float, nargs="+", default=None, help="per win; default win/2")
p.add_argument("--sung", action="store_true", help="only windows centred on sung chunks")
p.add_argument("--out", type=Path, required=True)
args = p.parse_args()
torch.set_num_threads(1)
corpus = load_corpus(args.data, fold_singers(args.fold)[0])
config = EvalConfig.make(True, None, None, "cpu", 1)
hops = args.hop or [w / 2 for w in args.win]
res = {}
for ck in args.ckpt:
    bb = backbone_from(ck)
    for win, hop in zip(args.win, hops, strict=True):
        key = f"{ck} win={win} hop={hop}"
        key += " sung" if args.sung else ""
        voiced = ({id(w): t.voiced for t in corpus for w in (t.mixture, t.vocals) if w is not None}
                  if args.sung else None)
        system = Windowed(key, bb, win, hop, voiced)
        results, _ = score_system(corpus, system, config, only_retrieval=True)
        r = results["retrieval"]
        res[key] = r
        brief = {k: (round(v.get("p_at_1", 0), 3), round(v.get("map", 0), 3))
                 for k, v in r.items() if isinstance(v, dict)}
        print(key, json.dumps(brief), flush=True)
args.out.parent.mkdir(parents=True, exist_ok=True)
args.out.write_text(json.dumps(res, indent=1))
