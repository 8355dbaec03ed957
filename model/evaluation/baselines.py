"""Reference systems scored by the same harness: random-init encoder, MFCC statistics and a
pretrained speaker encoder (Resemblyzer, optional `bench` extra)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torchaudio

from model.audio.signal import SAMPLE_RATE, l2_normalise
from model.audio.voice_mel import CHUNK_GAIN
from model.evaluation.systems import EmbedderExtractor

BASELINES = ("random", "mfcc", "resemblyzer", "resemblyzer-utterance")
#: embed_utterance's defaults: partials per second and the share a last partial must cover.
UTTERANCE_RATE = 1.3
UTTERANCE_COVERAGE = 0.75


class BaselineUnavailable(RuntimeError):
    """An optional baseline whose package is missing; the CLI skips it with this message."""


def random_system(seed: int = 0, device: str = "auto") -> EmbedderExtractor:
    """The CVSM encoder at its (seeded) initialisation: what the architecture gives for free."""
    from model.encoder import CVSMModel
    from model.inference.embedder import Embedder

    torch.manual_seed(seed)
    state = {k: v for k, v in CVSMModel().state_dict().items() if k.startswith("backbone.")}
    embedder = Embedder.from_state(state, {"name": "random", "seed": seed}, device, 256)
    return EmbedderExtractor(name="random", embedder=embedder, info={"seed": seed})


@dataclass
class MFCCExtractor:
    """Mean and standard deviation of 20 MFCCs (40-d), z-scored over the corpus before cosine;
    per 1 s chunk for the probes and over the whole clip for track embeddings. Without deltas:
    that reproduces the MIR-1K anchors (P@1 0.297/0.316/0.953 vs 0.298/0.359/0.947); with
    deltas (80-d) it gave 0.211/0.255/0.934."""

    name: str = "mfcc"
    standardise: bool = True
    n_mfcc: int = 20
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.info = {"track_embedding": "MFCC mean+std over the whole clip", **self.info}
        self.mfcc = torchaudio.transforms.MFCC(
            sample_rate=SAMPLE_RATE, n_mfcc=self.n_mfcc,
            melkwargs={"n_fft": 512, "win_length": 400, "hop_length": 160, "n_mels": 40})

    @torch.inference_mode()
    def _stats(self, waves: torch.Tensor) -> np.ndarray:
        coeffs = self.mfcc(waves)  # (batch, n_mfcc, frames)
        return torch.cat([coeffs.mean(-1), coeffs.std(-1)], dim=1).numpy()

    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        return self._stats(torch.from_numpy(np.ascontiguousarray(chunks, dtype=np.float32)))

    def embed_track(self, wave: np.ndarray) -> np.ndarray:
        return self._stats(torch.from_numpy(wave.astype(np.float32))[None])[0]


@dataclass
class ResemblyzerExtractor:
    """Resemblyzer's VoiceEncoder (GE2E speaker embedding, 256-d, CPU), 1 s chunks through the
    LSTM in batches. A track is the mean of its sung chunks like any system; `utterance=True`
    embeds the whole clip the way a user of the package would (`preprocess_wav`, then
    `embed_utterance`: its own VAD, 1.6 s partials at 1.3 per second), which is how the
    MIR-1K anchors were presumably made. `embed_tracks` gives exactly that result with the
    partials of many clips in one LSTM batch: one clip at a time cost 0.6-3.5 s per MIR-1K clip
    on the shared 2-core CPU, almost all of it in 9-partial LSTM calls."""

    name: str = "resemblyzer"
    standardise: bool = False
    utterance: bool = False
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            from resemblyzer import VoiceEncoder, preprocess_wav
        except ImportError as exc:  # pkg_resources (setuptools<81) or the package itself
            raise BaselineUnavailable(
                f"resemblyzer is not importable ({exc}); pip install 'resemblyzer' "
                "'setuptools<81' (the bench extra)") from exc
        self.encoder = VoiceEncoder(device="cpu", verbose=False)
        self.info = {"track_embedding": (
            "embed_utterance of the whole clip (preprocess_wav, 1.6 s partials)"
            if self.utterance else "L2-normalised mean of sung 1 s chunks"), **self.info}
        self._preprocess = preprocess_wav
        # resemblyzer.audio.wav_to_mel_spectrogram (librosa, one clip at a time: ~50 ms per
        # chunk here) as one batched transform, the one the distillation teacher uses.
        from model.audio.voice_mel import voice_mel_spectrogram

        self._mel = voice_mel_spectrogram()

    @torch.inference_mode()
    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        # Its mel input is linear power, so level matters: chunks arrive with every 5 s block at
        # unit norm (-49 dBFS); lift them to the -30 dBFS that preprocess_wav targets. (At
        # -49 dBFS MIR-1K vocals->vocals P@1 was 0.60 and gender ID at chance.)
        gain = CHUNK_GAIN
        out = []
        for i in range(0, len(chunks), 256):
            batch = torch.from_numpy(np.ascontiguousarray(chunks[i:i + 256] * gain,
                                                          dtype=np.float32))
            out.append(self.encoder(self._mel(batch).transpose(1, 2)).numpy())
        return np.concatenate(out)

    def _prepare(self, wave: np.ndarray) -> np.ndarray:
        prepared = self._preprocess(wave.astype(np.float32))
        if len(prepared) < SAMPLE_RATE // 2:  # VAD removed almost everything: use the clip
            prepared = wave.astype(np.float32)
        return prepared

    def embed_track(self, wave: np.ndarray) -> np.ndarray | None:
        """One clip through the package's own `embed_utterance` (the reference path)."""
        if not self.utterance:
            return None
        return self.encoder.embed_utterance(self._prepare(wave))

    def _partials(self, wave: np.ndarray) -> np.ndarray:
        """The (n, 160, 40) mel partials `embed_utterance` feeds the LSTM, built the same way."""
        from resemblyzer.audio import wav_to_mel_spectrogram

        wav_slices, mel_slices = self.encoder.compute_partial_slices(
            len(wave), UTTERANCE_RATE, UTTERANCE_COVERAGE)
        if wav_slices[-1].stop >= len(wave):
            wave = np.pad(wave, (0, wav_slices[-1].stop - len(wave)), "constant")
        mel = wav_to_mel_spectrogram(wave)
        return np.array([mel[s] for s in mel_slices])

    @torch.inference_mode()
    def embed_tracks(self, waves: list[np.ndarray]) -> list[np.ndarray] | None:
        """`embed_track` for many clips: their partials share LSTM batches of ~256, then each
        clip's partial embeddings are averaged and L2-normalised as `embed_utterance` does."""
        if not self.utterance:
            return None
        if not waves:
            return []
        partials = [self._partials(self._prepare(w)) for w in waves]
        stacked = np.concatenate(partials)
        emb = np.concatenate([self.encoder(torch.from_numpy(stacked[i:i + 256])).numpy()
                              for i in range(0, len(stacked), 256)])
        bounds = np.cumsum([0] + [len(p) for p in partials])
        means = [emb[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        return list(l2_normalise(np.stack(means)))


def baseline_system(name: str, seed: int = 0, device: str = "auto") -> object:
    """Build a baseline by name; raises BaselineUnavailable for a missing optional package."""
    if name == "random":
        return random_system(seed, device)
    if name == "mfcc":
        return MFCCExtractor()
    if name == "resemblyzer":
        return ResemblyzerExtractor()
    if name == "resemblyzer-utterance":
        return ResemblyzerExtractor(name=name, utterance=True)
    raise ValueError(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
