"""`ShuffleNet`: the network an `Arch` describes, meeting timm's model contract.

Layout (state_dict prefixes): `stem` (3x3 conv, BN, ReLU), `stem_pool` (3x3 s2 max-pool or
Identity), `stages.<i>.<j>` (units), `conv_head` (optional 1x1 conv, BN, ReLU: V2's conv5), `head`
(timm `ClassifierHead`: global pool, dropout, `head.fc`).

Feature taps (`feature_info`, `forward_intermediates`, `features_only=True`): index 0 is the stem
(before the max-pool, as timm's ResNets tap `act1`), then one per stage, so the paper's three
stages give the four levels timm's feature tests expect.

Annotations are real objects, not strings (no `from __future__ import annotations`): torch.fx copies
the root forward's annotations into the code it generates, a string one becomes a global bound to
that string (`x : _torch_Tensor_`), and TorchScript cannot script that graph.
"""

from pathlib import Path
from typing import Any, Mapping

import torch
from timm.layers import ClassifierHead, get_device_dtype
from timm.models import checkpoint_seq
from timm.models._features import feature_take_indices  # timm's own rule for forward_intermediates' indices;

# the one helper of timm's model contract that `timm.models` does not re-export (its models import it thus)
from torch import nn

from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import Arch
from shufflesearch.models._layers import conv_bn, make_unit


def as_arch(arch: Arch | Mapping[str, Any] | str | Path) -> Arch:
    """An `Arch` from an `Arch`, a dict as `Arch.to_dict` writes it, or a .yaml/.yml/.json path."""
    if isinstance(arch, Arch):
        return arch
    if isinstance(arch, Mapping):
        return Arch.from_dict(arch)
    if isinstance(arch, (str, Path)):
        return Arch.load(arch)
    raise ShuffleSearchError(f"arch = {arch!r}: expected an Arch, a dict or a genome file path")


class ShuffleNet(nn.Module):
    """A ShuffleNet-family classifier built from an `Arch` (v1 and V2 units, any mix)."""

    def __init__(self, arch: Arch | Mapping[str, Any] | str | Path, num_classes: int = 1000,
                 in_chans: int = 3, global_pool: str = "avg", drop_rate: float = 0.0, device=None, dtype=None):
        """
        Args:
            arch: The genome: an `Arch`, its dict, or a .yaml/.yml/.json path.
            num_classes: Classifier outputs, 0 for none.
            in_chans: Input image channels.
            global_pool: timm global pool type, '' for none.
            drop_rate: Dropout before the classifier.
            device: Device the parameters and buffers are created on.
            dtype: Their dtype.
        """
        super().__init__()
        dd = {"device": device, "dtype": dtype}
        arch = as_arch(arch)
        self.arch = arch
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.drop_rate = drop_rate
        self.grad_checkpointing = False

        stem = arch.stem
        self.stem = conv_bn(in_chans, stem.channels, 3, stem.stride, **dd)
        self.stem_pool = nn.MaxPool2d(3, stride=2, padding=1) if stem.max_pool else nn.Identity()
        reduction = stem.stride
        self.feature_info = [dict(num_chs=stem.channels, reduction=reduction, module="stem")]
        reduction *= 2 if stem.max_pool else 1

        stages = []
        for i, (stage, units) in enumerate(zip(arch.stages, arch.units())):
            stages.append(nn.Sequential(*[make_unit(u, **dd) for u in units]))
            reduction *= stage.stride
            self.feature_info.append(dict(num_chs=stage.out_channels, reduction=reduction, module=f"stages.{i}"))
        self.stages = nn.Sequential(*stages)

        last = arch.stages[-1].out_channels
        self.conv_head = conv_bn(last, arch.head.conv_channels, **dd) if arch.head.conv_channels else nn.Identity()
        self.num_features = self.head_hidden_size = arch.num_features
        self.head = ClassifierHead(self.num_features, num_classes, pool_type=global_pool, drop_rate=drop_rate, **dd)
        if device is None or torch.device(device).type != "meta":  # meta tensors hold no values to initialise
            self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict[str, Any]:
        blocks = r"^stages\.(\d+)" if coarse else r"^stages\.(\d+)\.(\d+)"
        return dict(stem=r"^stem", blocks=[(blocks, None), (r"^conv_head", (99999,))])

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head.fc

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        self.num_classes = num_classes
        # the model's device and dtype: after reset(0) the head has no parameters to take them from
        self.head.reset(num_classes, pool_type=global_pool, in_features=self.num_features, **get_device_dtype(self))

    def forward_intermediates(
            self,
            x: torch.Tensor,
            indices: int | list[int] | None = None,
            norm: bool = False,
            stop_early: bool = False,
            output_fmt: str = "NCHW",
            intermediates_only: bool = False,
    ) -> list[torch.Tensor] | tuple[torch.Tensor, list[torch.Tensor]]:
        """Forward that also returns the feature taps (`feature_info` order: stem, then each stage).

        `indices`: the last n taps if int, all if None, else these taps. `norm` is accepted for
        timm's API and has no effect (no final norm). `stop_early` skips the stages after the last
        tap; the returned final features then stop there too.
        """
        assert output_fmt == "NCHW", "Output shape must be NCHW."
        intermediates = []
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)

        x = self.stem(x)
        if 0 in take_indices:
            intermediates.append(x)
        x = self.stem_pool(x)
        if torch.jit.is_scripting() or not stop_early:  # can't slice stages in TorchScript
            stages = self.stages
        else:
            stages = self.stages[:max_index]
        last = len(self.stages)
        feat_idx = 0
        for feat_idx, stage in enumerate(stages, start=1):
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpoint_seq(stage, x)
            else:
                x = stage(x)
            if feat_idx in take_indices:
                intermediates.append(x)

        if intermediates_only:
            return intermediates
        if feat_idx == last:
            x = self.conv_head(x)
        return x, intermediates

    def prune_intermediate_layers(
            self,
            indices: int | list[int] = 1,
            prune_norm: bool = False,
            prune_head: bool = True,
    ) -> list[int]:
        """Drop the stages after the last tap in `indices` (and the head if asked or if they go)."""
        take_indices, max_index = feature_take_indices(len(self.feature_info), indices)
        self.stages = self.stages[:max_index]
        if max_index < len(self.feature_info) - 1:
            # conv_head and the classifier are sized for the last stage, which is gone
            self.conv_head = nn.Identity()
            self.num_features = self.head_hidden_size = self.feature_info[max_index]["num_chs"]
            prune_head = True
        if prune_head:
            self.reset_classifier(0, "")
        return take_indices

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.stem(x))
        if self.grad_checkpointing and not torch.jit.is_scripting():
            x = checkpoint_seq(self.stages, x, flatten=True)
        else:
            x = self.stages(x)
        return self.conv_head(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head(x, pre_logits=pre_logits) if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))


def build(arch: Arch | Mapping[str, Any] | str | Path, num_classes: int = 1000, in_chans: int = 3,
          global_pool: str = "avg", drop_rate: float = 0.0, **kwargs: Any) -> ShuffleNet:
    """A `ShuffleNet` from a genome (an `Arch`, its dict, or a .yaml/.json path); kwargs go to it."""
    return ShuffleNet(as_arch(arch), num_classes=num_classes, in_chans=in_chans, global_pool=global_pool,
                      drop_rate=drop_rate, **kwargs)
