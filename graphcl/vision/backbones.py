"""Image backbones: a CIFAR-stem ResNet-18 and a small conv net for 28 x 28 (or smaller) inputs.

Both take images `[B, C, H, W]` with values in [0, 1] and return features `[B, feature_dim]`. The per-channel
normalisation (dataset mean / std) is the first layer, held as buffers, so a saved encoder is self-contained:
`load_encoder(run)(images)` needs no preprocessing beyond scaling pixels to [0, 1]. Any input side works
(global average pooling), which multi-crop's small local views and PIRL's jigsaw patches rely on.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["Normalize", "ConvNet", "ResNet18", "BACKBONES", "build_backbone"]


class Normalize(nn.Module):
    """(x - mean) / std per channel, `[B, C, H, W] -> [B, C, H, W]`."""

    mean: Tensor
    std: Tensor

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError(f"Normalize: mean {list(mean)} and std {list(std)} must have one positive std per mean")
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.mean.shape[1]:
            raise ValueError(f"expected images [B, {self.mean.shape[1]}, H, W], got shape {tuple(x.shape)}")
        # channels-last activations: the faster convolution layout on CPU (oneDNN) and on GPU tensor cores
        return ((x - self.mean) / self.std).contiguous(memory_format=torch.channels_last)


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]


class ConvNet(nn.Module):
    """A small VGG-style net for 28 x 28 inputs: `[B, C, H, W] -> [B, 4 * width]` (`feature_dim`).

    conv(width) -> conv(2 width, stride 2) -> conv(4 width, stride 2) -> `depth - 3` x conv(4 width), each
    3 x 3 + BatchNorm + ReLU, then global average pooling. At width 32 a 28 x 28 image costs about 7.4 M
    multiply-adds at depth 3 and 14.6 M at depth 4.
    """

    def __init__(self, in_channels: int = 1, width: int = 32, depth: int = 4, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        if in_channels <= 0 or width <= 0 or depth < 3:
            raise ValueError(f"ConvNet: need positive in_channels and width and depth >= 3, got "
                             f"{in_channels}, {width}, {depth}")
        self.normalize = Normalize(mean or [0.5] * in_channels, std or [0.5] * in_channels)
        layers = [*_conv_bn(in_channels, width), *_conv_bn(width, 2 * width, 2), *_conv_bn(2 * width, 4 * width, 2)]
        for _ in range(depth - 3):
            layers += _conv_bn(4 * width, 4 * width)
        self.features = nn.Sequential(*layers)
        self.feature_dim = 4 * width
        self.to(memory_format=torch.channels_last)  # conv weights in the layout of the activations

    def forward(self, x: Tensor) -> Tensor:
        return self.features(self.normalize(x)).mean((2, 3))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3 x 3 convs with a (projected, when the shape changes) identity shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with the CIFAR stem (one 3 x 3 conv, stride 1, no max-pool): `[B, C, H, W] -> [B, 8 * width]`.

    Four stages of two basic blocks, widths (1, 2, 4, 8) x `width`, strides (1, 2, 2, 2), global average pooling;
    `width = 64` is the standard 512-dimensional ResNet-18.
    """

    def __init__(self, in_channels: int = 3, width: int = 64, mean: Sequence[float] | None = None,
                 std: Sequence[float] | None = None) -> None:
        super().__init__()
        if in_channels <= 0 or width <= 0:
            raise ValueError(f"ResNet18: in_channels and width must be positive, got {in_channels}, {width}")
        self.normalize = Normalize(mean or [0.5] * in_channels, std or [0.5] * in_channels)
        self.stem = nn.Sequential(*_conv_bn(in_channels, width))
        layers, c = [], width
        for i, mult in enumerate((1, 2, 4, 8)):
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(c, width * mult, stride), BasicBlock(width * mult, width * mult, 1)]
            c = width * mult
        self.layers = nn.Sequential(*layers)
        self.feature_dim = c
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        self.to(memory_format=torch.channels_last)

    def forward(self, x: Tensor) -> Tensor:
        return self.layers(self.stem(self.normalize(x))).mean((2, 3))


BACKBONES = {"convnet": ConvNet, "resnet18": ResNet18}


def build_backbone(name: str, in_channels: int, width: int | None = None, mean: Sequence[float] | None = None,
                   std: Sequence[float] | None = None, **options) -> nn.Module:
    """The backbone `name` ("convnet" | "resnet18"); `width` defaults to 32 (convnet) / 64 (resnet18).

    This is the "vision" builder of `encoder.pt`: `build_backbone(**spec)` rebuilds a saved encoder.
    """
    key = name.lower()
    if key not in BACKBONES:
        raise ValueError(f"unknown image backbone {name!r}; choose one of {sorted(BACKBONES)}")
    kwargs = {"width": width} if width is not None else {}
    return BACKBONES[key](in_channels=in_channels, mean=mean, std=std, **kwargs, **options)
