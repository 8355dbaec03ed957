"""One checkpoint file per run (nanoGPT style) and the slim inference export we ship.

A training checkpoint holds model, optimizer, config, step, data fingerprint and code version; it
is written to a temporary file and renamed, so a crash never leaves half a checkpoint behind.
The inference export keeps only the front end + backbone weights (float16 by default) and the
metadata; its `fingerprint` (a hash of the weights) names the model in FAISS manifests and SQL.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from model.audio.signal import SAMPLE_RATE
from model.files import atomic_write_bytes
from model.version import VERSION as CODE_VERSION

BACKBONE_PREFIXES = ("backbone.",)


def atomic_save(obj: Any, path: str | Path) -> None:
    """torch.save, written atomically (see `atomic_write_bytes`)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint dict (training or inference export)."""
    return torch.load(Path(path), map_location=map_location, weights_only=False)


def backbone_state(model_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The weights that produce the 1280-d representation (the front end has no weights)."""
    return {k: v for k, v in model_state.items() if k.startswith(BACKBONE_PREFIXES)}


def served_embedding(data: dict[str, Any]) -> str:
    """What a checkpoint or export serves: its recorded `embedding`, else its config's, else
    the backbone (every file written before the choice existed)."""
    return data.get("embedding") or data.get("config", {}).get("embedding") or "backbone"


def embedding_state(model_state: dict[str, torch.Tensor],
                    embedding: str) -> dict[str, torch.Tensor]:
    """The weights that produce `embedding`: the backbone, plus its head unless "backbone"."""
    state = backbone_state(model_state)
    if embedding == "backbone":
        return state
    head = {k: v for k, v in model_state.items() if k.startswith(f"{embedding}_head.")}
    if not head:
        raise ValueError(f"this checkpoint has no {embedding} head to embed with")
    return {**state, **head}


def context_samples(config: dict[str, Any]) -> int:
    """The backbone's context per side (TrainConfig.context_s) in samples; 0 for older files."""
    return int(round(float(config.get("context_s", 0.0) or 0.0) * SAMPLE_RATE))


def frame_pool_of(config: dict[str, Any]) -> int:
    """Mel frames per LSTM step (TrainConfig.frame_pool); 1 for older files."""
    return int(config.get("frame_pool", 1) or 1)


def fingerprint(state: dict[str, torch.Tensor], context: int = 0, frame_pool: int = 1) -> str:
    """Stable 16-hex-digit hash of the backbone weights, cast to float16 so that an export
    and the checkpoint it came from name the same model. A context (samples per side) or a
    frame pool changes every vector, so each is hashed too; without them the hash is what it
    always was."""
    digest = hashlib.sha256()
    if context:
        digest.update(f"context={context}".encode())
    if frame_pool != 1:
        digest.update(f"frame_pool={frame_pool}".encode())
    for key in sorted(state):
        digest.update(key.encode())
        tensor = state[key].detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        buf = io.BytesIO()
        buf.write(tensor.contiguous().numpy().tobytes())
        digest.update(buf.getvalue())
    return digest.hexdigest()[:16]


def export_inference(ckpt: dict[str, Any], path: str | Path, *,
                     dtype: torch.dtype = torch.float16, extra: dict | None = None) -> str:
    """Write the inference file (backbone, and the head that makes the served embedding when
    it is not the backbone's); returns the model fingerprint."""
    embedding = served_embedding(ckpt)
    state = embedding_state(ckpt["model"], embedding)
    config = ckpt.get("config", {})
    fp = fingerprint(state, context_samples(config), frame_pool_of(config))
    slim = {
        "kind": "cvsm-inference",
        # heads stay float32: a whitening head's bias is -weight @ mean, large beside the
        # unit-variance outputs, and float16 would shift every vector by its rounding
        "model": {k: (v.to(dtype) if v.is_floating_point() and k.startswith(BACKBONE_PREFIXES)
                      else v) for k, v in state.items()},
        "config": ckpt.get("config", {}),
        "step": ckpt.get("step", 0),
        "data_fingerprint": ckpt.get("data_fingerprint", ""),
        "code_version": ckpt.get("code_version", CODE_VERSION),
        "fingerprint": fp,
        "embedding": embedding,
        **(extra or {}),
    }
    atomic_save(slim, path)
    return fp
