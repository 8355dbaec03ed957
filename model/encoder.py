"""The CVSM network: log-mel -> EfficientNet-B0 (1 channel, from scratch) -> max pool -> 1280-d,
then a projection head (512, LayerNorm, tanh) and a bilinear similarity used only in training,
and optionally a distillation head (1280 -> the teacher's 256-d) trained toward a frozen
speaker encoder's view of the clean vocals (model/training/teacher.py).

The backbone output is the representation used for search and probing (docs/design.md). `arch`
picks the front end and backbone: "efficientnet-b0" (the paper's) or "voice-lstm"
(model/voice_encoder.py: a speaker encoder's network over its own mel bands, 256-d).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models import efficientnet_b0

from model.audio.features import N_MELS, LogMel, n_frames
from model.audio.signal import CHUNK
from model.audio.voice_mel import VoiceMel
from model.facts import EMBED_DIM
from model.voice_encoder import VoiceBackbone

PROJ_DIM = 512


class Backbone(nn.Module):
    """torchvision's EfficientNet-B0 with a one-channel stem and global max pooling."""

    dim = EMBED_DIM
    #: (frames, mels) of one 1 s chunk's log-mel: what an exported graph is traced with.
    input_shape = (n_frames(CHUNK), N_MELS)

    def __init__(self) -> None:
        super().__init__()
        net = efficientnet_b0(weights=None)
        stem = net.features[0][0]
        net.features[0][0] = nn.Conv2d(1, stem.out_channels, kernel_size=stem.kernel_size,
                                       stride=stem.stride, padding=stem.padding, bias=False)
        nn.init.kaiming_normal_(net.features[0][0].weight, mode="fan_out")
        self.features = net.features

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, frames, mels) -> (batch, 1280)."""
        x = self.features(logmel.unsqueeze(1))
        return torch.amax(x, dim=(2, 3))


#: The paper's network, and every checkpoint's arch unless its config names another.
DEFAULT_ARCH = "efficientnet-b0"
#: The speaker encoder's network: the one arch the teacher's weights fit (`init = "teacher"`).
VOICE_ARCH = "voice-lstm"
#: arch name -> (front end, backbone).
ARCHS: dict[str, tuple[type[nn.Module], type[nn.Module]]] = {
    DEFAULT_ARCH: (LogMel, Backbone),
    VOICE_ARCH: (VoiceMel, VoiceBackbone),
}


def check_arch(arch: str) -> str:
    if arch not in ARCHS:
        raise ValueError(f"unknown arch {arch!r}; choose from {', '.join(ARCHS)}")
    return arch


class Head(nn.Module):
    """Projection used by the contrastive loss: Linear(backbone dim, 512) -> LayerNorm -> tanh."""

    def __init__(self, dim: int = EMBED_DIM) -> None:
        super().__init__()
        self.proj = nn.Linear(dim, PROJ_DIM)
        self.norm = nn.LayerNorm(PROJ_DIM)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.norm(self.proj(h)))


class CVSMModel(nn.Module):
    """Waveform crops in, backbone embeddings (and head projections for the loss) out."""

    def __init__(self, bilinear_std: float = 0.05, kd_dim: int = 0,
                 contrastive_weight: float = 1.0, kd_weight: float = 0.0,
                 arch: str = DEFAULT_ARCH, context: int = 0, frame_pool: int = 1) -> None:
        super().__init__()
        frontend, backbone = ARCHS[check_arch(arch)]
        self.arch = arch
        #: Samples of neighbouring audio on each side of a 1 s chunk (signal.chunk's context).
        self.context = context
        #: Mel frames per LSTM step (voice-lstm only; TrainConfig.frame_pool).
        self.frame_pool = frame_pool
        self.frontend = frontend()
        if frame_pool != 1 and arch != VOICE_ARCH:
            raise ValueError(f"frame_pool applies to arch {VOICE_ARCH!r} only")
        self.backbone = backbone(frame_pool) if arch == VOICE_ARCH else backbone()
        self.head = Head(self.backbone.dim)
        # Bilinear similarity s(a, p) = a^T W p; the paper's Keras random_normal init has
        # std 0.05, which starts the logits near +-15 (a saturated softmax).
        self.bilinear = nn.Parameter(torch.randn(PROJ_DIM, PROJ_DIM) * bilinear_std)
        self.kd_head = nn.Linear(self.backbone.dim, kd_dim) if kd_dim else None
        if self.kd_head is not None and kd_dim == self.backbone.dim and arch != DEFAULT_ARCH:
            # a speaker-encoder backbone already speaks the teacher's space: start the head
            # as the identity, so a network initialised from the teacher starts at its targets
            nn.init.eye_(self.kd_head.weight)
            nn.init.zeros_(self.kd_head.bias)
        self.contrastive_weight, self.kd_weight = contrastive_weight, kd_weight

    @property
    def crop(self) -> int:
        """Samples of one backbone input: a 1 s chunk and its context."""
        return CHUNK + 2 * self.context

    @property
    def input_shape(self) -> tuple[int, int]:
        """(frames, mels) of one chunk's front-end output: what a graph is exported with."""
        return (self.frontend.frames(self.crop), self.backbone.input_shape[1])

    def embed(self, wave: torch.Tensor) -> torch.Tensor:
        """(batch, samples) waveform -> (batch, backbone dim) representation."""
        return self.backbone(self.frontend(wave))

    def project(self, wave: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(wave))

    def similarity(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """(A, 512) x (P, 512) -> (A, P) logits, no temperature (bilinear, as the paper)."""
        return anchors @ self.bilinear @ positives.T

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor, silent: torch.Tensor,
                targets: torch.Tensor | None = None,
                has_target: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """Training forward = the whole loss, so DDP and torch.compile wrap all of it: one
        backbone pass over anchors and positives feeds the contrastive loss and, when
        `targets` (teacher embeddings, anchors' rows then positives') are given, the
        distillation loss; `loss` is their weighted sum."""
        h = self.embed(torch.cat([anchors, positives]))
        out = {}
        out["contrastive"], out["acc"] = contrastive_from_embeddings(self, h, silent)
        loss = self.contrastive_weight * out["contrastive"]
        if targets is not None and self.kd_head is not None:
            out["kd"] = distillation_loss(self.kd_head(h), targets, has_target)
            loss = loss + self.kd_weight * out["kd"]
        out["loss"] = loss
        return out


def distillation_loss(student: torch.Tensor, targets: torch.Tensor,
                      has_target: torch.Tensor) -> torch.Tensor:
    """Mean (1 - cosine) between student projections and unit teacher targets, over the rows
    that have a target (crops with no sung teacher window around them have none)."""
    cos = nn.functional.cosine_similarity(student.float(), targets.float(), dim=1)
    weight = has_target.float()
    return ((1 - cos) * weight).sum() / weight.sum().clamp_min(1.0)


def contrastive_loss(model: CVSMModel, anchors: torch.Tensor, positives: torch.Tensor,
                     silent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each anchor over the batch's positives; see
    `contrastive_from_embeddings`. Returns (loss, accuracy)."""
    return contrastive_from_embeddings(model, model.embed(torch.cat([anchors, positives])),
                                       silent)


def contrastive_from_embeddings(model: CVSMModel, h: torch.Tensor,
                                silent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of each anchor over the batch's positives (one direction); `h` holds the
    backbone outputs of the anchors, then of the positives.

    Positives flagged `silent` (no singing) are merged into one shared "silence" column, the
    mean of their projections, and their anchors are labelled with it. Returns (loss, accuracy).
    """
    z = model.head(h)
    za, zp = z.split(h.shape[0] // 2)
    active = ~silent
    columns = [zp[active]]
    if bool(silent.any()):
        columns.append(zp[silent].mean(dim=0, keepdim=True))
    logits = model.similarity(za, torch.cat(columns)).float()
    n_active = int(active.sum())
    labels = torch.full((za.shape[0],), n_active, dtype=torch.long, device=za.device)
    labels[active] = torch.arange(n_active, device=za.device)
    loss = nn.functional.cross_entropy(logits, labels)
    accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return loss, accuracy
