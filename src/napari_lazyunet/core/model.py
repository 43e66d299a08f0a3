"""The multi-task U-Net of Ke et al. and a single-task U-Net baseline.

Both share the same contracting path so that comparisons between them are
about the expansive path and the labels, nothing else.

Multi-task expansive path (one block per resolution, coarse to fine, bilinear
2x upsampling between blocks)::

    x_{l+1}  = F(up(x_l), c_l)              detection
    z'_{l+1} = F(up(z_l), c_l)              segmentation, same F (shared weights)
    z_{l+1}  = z'_{l+1} + F_res(z'_{l+1})   segmentation's own residual sub-block
    y_{l+1}  = G(z_{l+1}, up(y_l))          separation, skip from the segmentation path

where ``c_l`` is the contracting-path feature map of level ``l``. All three
paths start from the bottleneck. A 1x1 convolution head per task gives the
logits; softmax is applied by the loss and at prediction time.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig


def _conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two (conv 3x3 -> batch norm -> LeakyReLU 0.01), as in the paper."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(0.01, inplace=True),
    )


def _up(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)


class Encoder(nn.Module):
    """Contracting path: ``depth`` poolings, channels doubling at each level."""

    def __init__(self, in_channels: int, base_channels: int, depth: int):
        super().__init__()
        widths = [base_channels * 2**level for level in range(depth + 1)]
        self.widths = widths
        self.blocks = nn.ModuleList()
        previous = in_channels
        for width in widths:
            self.blocks.append(_conv_block(previous, width))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every level, finest first; the last one is the bottleneck."""
        features = []
        for level, block in enumerate(self.blocks):
            if level:
                x = F.max_pool2d(x, 2)
            x = block(x)
            features.append(x)
        return features


class _PaddedNet(nn.Module):
    """Pads inputs to a multiple of ``2**depth`` and crops the outputs back."""

    depth: int

    def _pad(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        multiple = 2**self.depth
        height, width = x.shape[-2:]
        pad_y, pad_x = (-height) % multiple, (-width) % multiple
        if pad_y or pad_x:
            # Reflection needs the pad to be smaller than the side; fall back to
            # replication for tiny inputs.
            mode = "reflect" if pad_y < height and pad_x < width else "replicate"
            x = F.pad(x, (0, pad_x, 0, pad_y), mode=mode)
        return x, (height, width)

    @staticmethod
    def _crop(outputs: dict[str, torch.Tensor], size: tuple[int, int]) -> dict[str, torch.Tensor]:
        return {task: logits[..., : size[0], : size[1]] for task, logits in outputs.items()}


class MultiTaskUNet(_PaddedNet):
    """The paper's multi-task U-Net: detection, segmentation and separation heads.

    Parameters
    ----------
    config : ModelConfig
        ``in_channels``, ``class_names`` (C classes), ``base_channels``, ``depth``.

    Notes
    -----
    ``forward`` accepts any ``(N, in_channels, H, W)``; odd sizes are padded
    internally and the logits cropped back to ``H x W``. It returns
    ``{"detection": (N, C+1, H, W), "segmentation": (N, C+1, H, W),
    "separation": (N, 2, H, W)}``.
    """

    tasks = ("detection", "segmentation", "separation")

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.depth = config.depth
        self.encoder = Encoder(config.in_channels, config.base_channels, config.depth)
        widths = self.encoder.widths
        self.shared = nn.ModuleList()  # F: detection and segmentation
        self.residual = nn.ModuleList()  # F_res: segmentation only
        self.separation = nn.ModuleList()  # G: separation
        for level in reversed(range(config.depth)):
            coarse, fine = widths[level + 1], widths[level]
            self.shared.append(_conv_block(coarse + fine, fine))
            self.residual.append(_conv_block(fine, fine))
            self.separation.append(_conv_block(coarse + fine, fine))
        n_out = config.n_classes + 1
        self.detection_head = nn.Conv2d(widths[0], n_out, 1)
        self.segmentation_head = nn.Conv2d(widths[0], n_out, 1)
        self.separation_head = nn.Conv2d(widths[0], 2, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image, size = self._pad(image)
        features = self.encoder(image)
        x = z = y = features[-1]
        n = image.shape[0]
        for step, skip in enumerate(reversed(features[:-1])):
            # Run F once on detection and segmentation stacked along the batch:
            # identical weights, one kernel launch, and batch norm sees both.
            stacked = torch.cat([_up(x, skip), _up(z, skip)], dim=0)
            both = self.shared[step](torch.cat([stacked, torch.cat([skip, skip], dim=0)], dim=1))
            x, z_prime = both[:n], both[n:]
            z = z_prime + self.residual[step](z_prime)
            y = self.separation[step](torch.cat([_up(y, skip), z], dim=1))
        outputs = {
            "detection": self.detection_head(x),
            "segmentation": self.segmentation_head(z),
            "separation": self.separation_head(y),
        }
        return self._crop(outputs, size)


class UNet(_PaddedNet):
    """Plain single-task U-Net with the same encoder; predicts segmentation only.

    Used as the baseline that learns from one kind of label (weak detection
    regions, the few strong masks, or GrabCut pseudo-labels).
    """

    tasks = ("segmentation",)

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.depth = config.depth
        self.encoder = Encoder(config.in_channels, config.base_channels, config.depth)
        widths = self.encoder.widths
        self.decoder = nn.ModuleList(
            _conv_block(widths[level + 1] + widths[level], widths[level])
            for level in reversed(range(config.depth))
        )
        self.head = nn.Conv2d(widths[0], config.n_classes + 1, 1)

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        image, size = self._pad(image)
        features = self.encoder(image)
        x = features[-1]
        for step, skip in enumerate(reversed(features[:-1])):
            x = self.decoder[step](torch.cat([_up(x, skip), skip], dim=1))
        return self._crop({"segmentation": self.head(x)}, size)


def build_model(config: ModelConfig) -> MultiTaskUNet | UNet:
    """The network a :class:`ModelConfig` describes (multi-task or baseline)."""
    return MultiTaskUNet(config) if config.multitask else UNet(config)
