"""Contrastive training loop (nanoGPT style): one file, one checkpoint, exact resume.

The loss is the contrastive one of the chosen system, optionally plus distillation toward a
frozen speaker encoder (cfg.kd_weight; targets precomputed with the bank,
model/training/teacher.py).
A run may start from other weights (cfg.init: fine-tuning) and read several manifests.
Each step's randomness (which pairs, stochastic depth) is derived from (seed, step, rank), so a
run resumed from its last checkpoint draws exactly what an uninterrupted run would. bf16
autocast on CUDA, optional torch.compile, DDP when launched by torchrun (RANK/WORLD_SIZE).
"""

from __future__ import annotations

import json
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from model import checkpoint as ckpt_io
from model.audio.signal import SAMPLE_RATE
from model.data.manifest import ManifestTrack, check_tracks, read_manifests
from model.data.voice_shift import shifted_tracks
from model.encoder import VOICE_ARCH, CVSMModel
from model.files import atomic_copy
from model.inference.device import resolve_device
from model.training.bank import Bank, build_bank
from model.training.config import TEACHER_INIT, TrainConfig
from model.training.pairs import SYSTEMS, Batch, PairSampler
from model.training.teacher import Teacher, TeacherTargets


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def dist_from_env(env: dict[str, str]) -> DistInfo:
    """torchrun's variables (the caller passes os.environ; library code never reads it)."""
    return DistInfo(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)),
                    int(env.get("LOCAL_RANK", 0)))


def split_tracks(bank: Bank, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """Train/validation track indices: whole singers held out when cfg.val_artists is set."""
    usable = np.array([i for i, n in enumerate(bank.lengths) if n >= cfg.crop])
    if cfg.val_artists:
        held = set(cfg.val_artists)
        missing = held - {t.artist for t in bank.tracks}
        if missing:
            raise ValueError(f"val_artists not in the manifest: {sorted(missing)}")
        is_val = np.array([bank.tracks[i].held_out_as in held for i in usable])
    else:  # a share of tracks; a shifted copy goes where its source track goes
        keys = np.array([bank.tracks[i].split_key for i in usable])
        # groups in track order, so that without copies this is the per-track split it was
        groups = np.array(list(dict.fromkeys(keys)))
        order = np.random.default_rng(cfg.seed).permutation(len(groups))
        n_val = int(round(cfg.val_fraction * len(groups)))
        is_val = np.isin(keys, groups[order[:n_val]])
    return usable[~is_val], usable[is_val]


def step_rng(seed: int, step: int, rank: int) -> np.random.Generator:
    return np.random.default_rng([seed, step, rank])


class Trainer:
    """Owns model, optimizer, data and the run folder; `run()` trains to cfg.steps."""

    def __init__(self, cfg: TrainConfig, manifest: Path | list[Path], out_dir: Path, *,
                 device: str = "auto", cache_dir: Path, resume: bool = False, workers: int = 2,
                 dist: DistInfo | None = None, quiet: bool = False,
                 teacher: Teacher | None = None) -> None:
        self.cfg, self.out, self.quiet = cfg, Path(out_dir), quiet
        self.dist = dist or DistInfo()
        self.device = self._device(device)
        manifests = manifest if isinstance(manifest, list) else [manifest]
        tracks = read_manifests(manifests)
        system = SYSTEMS[cfg.system]
        check_tracks(tracks, need_stems=system.needs_stems, need_artist=system.by_artist,
                     where=", ".join(map(str, manifests)), allow_vocals_only=system.mixes)
        if cfg.voice_shifts:
            tracks = tracks + shifted_tracks(tracks, cfg.voice_shifts)
        self._init_process_group()
        self.bank, self.targets = self._data(tracks, cache_dir, workers, teacher)
        self.train_idx, self.val_idx = split_tracks(self.bank, cfg)
        if len(self.train_idx) == 0:
            raise ValueError(f"no training tracks of at least {cfg.crop / SAMPLE_RATE:g} s")
        self.train_sampler = PairSampler(self.bank, self.train_idx, cfg.pairs, self.device,
                                         cfg.batch_size, cfg.crop)
        self.val_sampler = (PairSampler(self.bank, self.val_idx, cfg.pairs, self.device,
                                        cfg.batch_size, cfg.crop) if len(self.val_idx) else None)
        self.model = self._build_model()
        if cfg.init and not (resume and (self.out / "last.pt").is_file()):
            self._init_weights(cfg.init)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr,
                                          weight_decay=cfg.weight_decay)
        self.step, self.best = 0, -1.0
        if resume and (self.out / "last.pt").is_file():
            self._resume(self.out / "last.pt")
        self.ddp_model = self._wrap()

    # -- setup -------------------------------------------------------------------------------

    def _device(self, name: str) -> torch.device:
        """`name` ("auto" = CUDA when present); a torchrun rank gets its local GPU."""
        device = resolve_device(name)
        if device.type == "cuda" and self.dist.world > 1:
            torch.cuda.set_device(self.dist.local_rank)
            return torch.device("cuda", self.dist.local_rank)
        return device

    def _init_process_group(self) -> None:
        """Join the torchrun job (before any shared work, so ranks can wait for each other)."""
        if self.dist.world > 1 and not torch.distributed.is_initialized():
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            torch.distributed.init_process_group(backend=backend)

    def _data(self, tracks: list[ManifestTrack], cache_dir: Path, workers: int,
              teacher: Teacher | None) -> tuple[Bank, TeacherTargets | None]:
        """The decoded stems (and teacher targets when distilling): under DDP the first
        process of each node builds them while the others wait, instead of every process
        decoding the same catalog at once."""
        quiet = self.quiet or not self.dist.main
        if self.dist.world > 1 and self.dist.local_rank != 0:
            torch.distributed.barrier()
            return self._build_data(tracks, cache_dir, workers, teacher, quiet=True)
        try:
            return self._build_data(tracks, cache_dir, workers, teacher, quiet)
        finally:  # also on failure: the waiting ranks then fail on the same file themselves
            if self.dist.world > 1:
                torch.distributed.barrier()

    def _build_data(self, tracks: list[ManifestTrack], cache_dir: Path, workers: int,
                    teacher: Teacher | None, quiet: bool) -> tuple[Bank, TeacherTargets | None]:
        bank = build_bank(tracks, cache_dir, workers=workers, quiet=quiet)
        if not self.cfg.distils:
            return bank, None
        from model.training.teacher import ResemblyzerTeacher, build_targets

        if "vocals" not in bank.stems:
            raise ValueError("distillation needs vocals stems (the teacher hears clean vocals)")
        return bank, build_targets(bank, teacher or ResemblyzerTeacher(), quiet=quiet)

    def _build_model(self) -> CVSMModel:
        torch.manual_seed(self.cfg.seed)
        kd_dim = self.targets.embeddings.shape[1] if self.targets is not None else 0
        model = CVSMModel(self.cfg.bilinear_std, kd_dim=kd_dim,
                          contrastive_weight=self.cfg.contrastive_weight,
                          kd_weight=self.cfg.kd_weight, arch=self.cfg.arch,
                          context=self.cfg.context,
                          frame_pool=self.cfg.frame_pool).to(self.device)
        if self.device.type == "cuda" and self.cfg.channels_last:
            model = model.to(memory_format=torch.channels_last)
        return model

    def _wrap(self) -> nn.Module:
        model: nn.Module = self.model
        if self.dist.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if self.cfg.compile and self.device.type == "cuda":
            model = torch.compile(model)
        return model

    def _init_weights(self, init: str) -> None:
        """Fine-tuning: copy every weight of `init` (training checkpoint or inference export,
        or "teacher": the speaker encoder's pretrained network) whose name and shape match;
        heads the file lacks keep their fresh initialisation."""
        path = Path(init)
        if init == TEACHER_INIT:
            from model.training.teacher import pretrained_backbone_state

            if self.cfg.arch != VOICE_ARCH:
                raise ValueError(f"--init {TEACHER_INIT} needs arch = {VOICE_ARCH!r} (the "
                                 f"teacher's network), not {self.cfg.arch!r}")
            source = pretrained_backbone_state()
        elif not path.is_file():
            raise ValueError(f"--init: no such checkpoint: {path}")
        else:
            source = ckpt_io.load(path, map_location=self.device)["model"]
        own = self.model.state_dict()
        match = {k: v.to(own[k].dtype) for k, v in source.items()
                 if k in own and own[k].shape == v.shape}
        if not any(k.startswith("backbone.") for k in match):
            raise ValueError(f"--init: {path} holds no backbone weights of this model")
        self.model.load_state_dict(match, strict=False)
        if not self.quiet and self.dist.main:
            print(f"init from {path}: {len(match)} of {len(own)} tensors")

    def _resume(self, path: Path) -> None:
        state = ckpt_io.load(path, map_location=self.device)
        if state["data_fingerprint"] != self.bank.fingerprint:
            raise ValueError(f"{path} was trained on other data ({state['data_fingerprint']} "
                             f"!= {self.bank.fingerprint}); start a new run folder")
        teacher = self.targets.version if self.targets is not None else ""
        if state.get("teacher_version", "") != teacher:
            raise ValueError(f"{path} was distilled from another teacher "
                             f"({state.get('teacher_version') or 'none'}); start a new run folder")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step, self.best = int(state["step"]), float(state.get("best", -1.0))

    # -- one step ---------------------------------------------------------------------------

    def _autocast(self):
        if self.device.type == "cuda" and self.cfg.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return nullcontext()

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def train_step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        torch.manual_seed(self.cfg.seed * 1_000_003 + self.step * 7919 + self.dist.rank)
        batch = self.train_sampler.sample(step_rng(self.cfg.seed, self.step, self.dist.rank))
        self._sync()
        t1 = time.perf_counter()
        self.ddp_model.train()
        self._set_lr()
        with self._autocast():
            out = self.ddp_model(batch.anchors, batch.positives, batch.silent,
                                 *self._teacher(batch))
        self.optimizer.zero_grad(set_to_none=True)
        out["loss"].backward()
        grad_norm = self._clip_gradients()
        self.optimizer.step()
        self._sync()
        t2 = time.perf_counter()
        self.step += 1
        return {**{k: float(v.item()) for k, v in out.items()}, "grad_norm": grad_norm,
                "lr": self.optimizer.param_groups[0]["lr"], "data_s": t1 - t0,
                "compute_s": t2 - t1, "silent": float(batch.silent.float().mean())}

    def _clip_gradients(self) -> float:
        """The global gradient norm before clipping, logged so that a spike that precedes a
        divergence shows in metrics.jsonl; scaled down to `grad_clip` when above it."""
        limit = self.cfg.grad_clip or float("inf")
        return float(torch.nn.utils.clip_grad_norm_(self.model.parameters(), limit))

    def _teacher(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor] | tuple[()]:
        """Distillation targets of the batch's anchors then positives (nothing without KD)."""
        if self.targets is None:
            return ()
        at = np.concatenate([batch.anchor_at, batch.positive_at])
        tracks = np.concatenate([batch.anchor_tracks, batch.positive_tracks])
        targets, has = self.targets.lookup(at, tracks, self.cfg.kd_context_s, self.cfg.crop)
        return (torch.from_numpy(targets).to(self.device),
                torch.from_numpy(has).to(self.device))

    def _set_lr(self) -> None:
        lr = self.cfg.lr_at(self.step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Contrastive loss/accuracy on fixed batches of held-out tracks (chance = 1/batch)."""
        if self.val_sampler is None:
            return {}
        self.model.eval()
        records = []
        for i in range(self.cfg.eval_batches):
            batch = self.val_sampler.sample(np.random.default_rng([self.cfg.seed, 10**9 + i]))
            with self._autocast():
                out = self.model(batch.anchors, batch.positives, batch.silent,
                                 *self._teacher(batch))
            records.append({k: float(v) for k, v in out.items()})
        self.model.train()
        mean = {k: float(np.mean([r[k] for r in records])) for k in records[0]}
        val = {"val_loss": mean["loss"], "val_acc": mean["acc"],
               "chance": 1.0 / self.cfg.batch_size}
        if "kd" in mean:
            val.update(val_contrastive=mean["contrastive"], val_kd=mean["kd"])
        return val

    def _score(self, val: dict[str, float]) -> float:
        """What "best" means: contrastive accuracy, or teacher agreement for a KD-only run."""
        if not val:
            return float(self.step)
        if self.cfg.contrastive_weight == 0:
            return 1.0 - val["val_kd"]
        return val["val_acc"]

    # -- the loop ---------------------------------------------------------------------------

    def run(self, steps: int | None = None, max_seconds: float | None = None) -> dict[str, Any]:
        """Train until `steps` (default cfg.steps) or `max_seconds` of wall time, whichever
        comes first (a time-boxed run still ends with a checkpoint); returns a summary."""
        target = steps if steps is not None else self.cfg.steps
        self.out.mkdir(parents=True, exist_ok=True)
        bar = tqdm(total=target, initial=self.step, desc=f"train {self.cfg.name}", unit="step",
                   disable=self.quiet or not self.dist.main)
        window: list[dict[str, float]] = []
        start = time.perf_counter()
        first_step = self.step
        val: dict[str, float] = {}
        while self.step < target:
            window.append(self.train_step())
            bar.update(1)
            if max_seconds is not None and self._out_of_time(start, max_seconds):
                target = self.step  # out of time: log, validate and checkpoint now
            if self.step % self.cfg.log_interval == 0 or self.step == target:
                self._log_train(window, bar)
                window = []
            if self.step % self.cfg.eval_interval == 0 or self.step == target:
                val = self.validate()
                self._checkpoint(val)
        bar.close()
        elapsed = time.perf_counter() - start
        summary = {"steps": self.step, "seconds": elapsed, "best_score": self.best, **val,
                   "pairs_per_s": (self.step - first_step) * self.cfg.batch_size
                   * self.dist.world / max(elapsed, 1e-9)}
        if self.dist.main:
            self._finish(summary)
        return summary

    def close(self) -> None:
        """Leave the torchrun job (tears the process group down); a no-op in one process."""
        if self.dist.world > 1 and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    def _out_of_time(self, start: float, max_seconds: float) -> bool:
        """Whether any process is past the time box: under DDP all stop at the same step (one
        process stopping alone would leave the others waiting in an all-reduce forever)."""
        late = time.perf_counter() - start > max_seconds
        if self.dist.world == 1:
            return late
        flag = torch.tensor([float(late)], device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def _log_train(self, window: list[dict[str, float]], bar: tqdm) -> None:
        if not window:
            return
        mean = {k: float(np.mean([w[k] for w in window])) for k in window[0]}
        mean["grad_norm_max"] = max(w["grad_norm"] for w in window)
        step_s = mean["data_s"] + mean["compute_s"]
        mean["pairs_per_s"] = self.cfg.batch_size * self.dist.world / max(step_s, 1e-9)
        bar.set_postfix(loss=f"{mean['loss']:.3f}", pairs_s=f"{mean['pairs_per_s']:.0f}")
        self._append({"split": "train", **mean})

    def _append(self, record: dict[str, Any]) -> None:
        if not self.dist.main:
            return
        record = {"step": self.step, "time": time.time(), **record}
        with (self.out / "metrics.jsonl").open("a") as fh:
            fh.write(json.dumps(record) + "\n")

    def _checkpoint(self, val: dict[str, float]) -> None:
        if val:
            self._append({"split": "val", **val})
        if not self.dist.main:
            return
        score = self._score(val)
        improved = score > self.best
        if improved:
            self.best = score
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "config": self.cfg.to_dict(),
            "step": self.step,
            "best": self.best,
            "data_fingerprint": self.bank.fingerprint,
            "teacher_version": self.targets.version if self.targets is not None else "",
            "code_version": ckpt_io.CODE_VERSION,
            # the singers heard: a shifted copy of a voice counts as its source singer
            "train_artists": sorted({self.bank.tracks[i].held_out_as for i in self.train_idx}),
            "val_artists": sorted({self.bank.tracks[i].held_out_as for i in self.val_idx}),
            "metrics": val,
        }
        ckpt_io.atomic_save(state, self.out / "last.pt")
        if improved:
            atomic_copy(self.out / "last.pt", self.out / "best.pt")

    def _finish(self, summary: dict[str, Any]) -> None:
        from model.training.plots import plot_training_curves

        plot_training_curves(self.out / "metrics.jsonl", self.out / "curves.png",
                             title=self.cfg.name)
        best = ckpt_io.load(self.out / "best.pt")
        ckpt_io.export_inference(best, self.out / "model.pt",
                                 extra={"train_artists": best.get("train_artists", [])})
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2))
