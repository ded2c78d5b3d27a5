"""Our ShuffleNets against references on CPU, in one process, interleaved, same thread count.

(1) `shufflenet_v2_x1_0` against torchvision's, (2) `shufflenet_v1_g3_x1_0` against a plain v1 written
the obvious way (below: `.view/.transpose/.contiguous` shuffle, cat, functional ReLU), both holding the
same weights. Each is timed on a training step (SGD, batch 64 at 64x64) and on inference (batch 32 at
224), in NCHW and channels_last; "ours, cat+shuffle" swaps our fused concat-shuffle for torchvision's
cat-then-shuffle, measuring what the fusion buys. Ratios are against the reference in NCHW (as
shipped) and against the reference in the same memory format. Rounds alternate the contestants so
drift hits all alike; each contestant's fastest round is reported (other processes on a shared
machine only ever add time).

Run: PYTHONPATH=. python benchmarks/bench_model.py [--threads 2] [--rounds 10]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import time
from typing import Callable

import torch
import torch.nn.functional as F
import torchvision
from torch import nn
from torchvision.models.shufflenetv2 import channel_shuffle as tv_channel_shuffle

from shufflesearch import build, get_arch
from shufflesearch.genome._arch import Arch
from shufflesearch.models import _layers


class RefV1Unit(nn.Module):
    def __init__(self, cin: int, cout: int, mid: int, stride: int, groups1: int, groups: int):
        super().__init__()
        self.stride, self.groups = stride, groups
        self.conv1 = nn.Conv2d(cin, mid, 1, groups=groups1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout - cin if stride == 2 else cout, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(self.conv3.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        b, c, h, w = out.shape
        out = out.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous().view(b, c, h, w)
        out = self.bn3(self.conv3(self.bn2(self.conv2(out))))
        if self.stride == 2:
            return F.relu(torch.cat((F.avg_pool2d(x, 3, 2, 1), out), 1))
        return F.relu(x + out)


class RefV1(nn.Module):
    def __init__(self, arch: Arch, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, arch.stem.channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(arch.stem.channels)
        self.units = nn.Sequential(*[RefV1Unit(u.in_channels, u.out_channels, u.mid_channels, u.stride, u.groups1,
                                               u.groups2) for stage in arch.units() for u in stage])
        self.fc = nn.Linear(arch.stages[-1].out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        return self.fc(self.units(x).mean((2, 3)))


@contextlib.contextmanager
def torchvision_shuffle():
    """Our V2 units with torchvision's cat-then-shuffle instead of the fused `concat_shuffle`."""
    fused = _layers.concat_shuffle
    _layers.concat_shuffle = lambda a, b: tv_channel_shuffle(torch.cat((a, b), 1), 2)
    try:
        yield
    finally:
        _layers.concat_shuffle = fused


def copy_weights(src: nn.Module, dst: nn.Module) -> None:
    """Copy tensors in registration order (the two nets register the same layers in the same order)."""
    src_sd, dst_sd = src.state_dict(), dst.state_dict()
    assert [v.shape for v in src_sd.values()] == [v.shape for v in dst_sd.values()]
    dst.load_state_dict(dict(zip(dst_sd, src_sd.values())))


def contestants(model: str) -> list[tuple[str, nn.Module, bool, Callable]]:
    """(label, module, channels_last, context) tuples; the reference comes first."""
    torch.manual_seed(0)
    ours = build(get_arch(model))
    if model.startswith("shufflenet_v2"):
        ref, ref_name = getattr(torchvision.models, model)(), "torchvision"
    else:
        ref, ref_name = RefV1(get_arch(model)), "plain v1"
    copy_weights(ours, ref)
    x = torch.randn(2, 3, 64, 64)
    torch.testing.assert_close(ref.eval()(x), ours.eval()(x))  # the same function
    out = []
    for channels_last in (False, True):
        fmt = " channels_last" if channels_last else ""
        out.append((ref_name + fmt, _copy(ref, channels_last), channels_last, contextlib.nullcontext))
        out.append(("ours" + fmt, _copy(ours, channels_last), channels_last, contextlib.nullcontext))
        if model.startswith("shufflenet_v2"):
            out.append((f"ours, cat+shuffle{fmt}", _copy(ours, channels_last), channels_last, torchvision_shuffle))
    return out


def _copy(model: nn.Module, channels_last: bool) -> nn.Module:
    clone = copy.deepcopy(model)
    return clone.to(memory_format=torch.channels_last) if channels_last else clone


def train_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, opt: torch.optim.Optimizer) -> None:
    opt.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    opt.step()


def race(entries, mode: str, rounds: int) -> dict[str, float]:
    """Images/second of each entry in its fastest round, rounds interleaved."""
    batch, size = (64, 64) if mode == "train" else (32, 224)
    x = torch.randn(batch, 3, size, size)
    y = torch.randint(0, 1000, (batch,))
    steps = {}
    for label, model, channels_last, ctx in entries:
        xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
        if mode == "train":
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            steps[label] = (ctx, lambda m=model.train(), xin=xin, opt=opt: train_step(m, xin, y, opt))
        else:
            steps[label] = (ctx, lambda m=model.eval(), xin=xin: m(xin))
    times: dict[str, list[float]] = {label: [] for label in steps}
    with torch.inference_mode(mode == "infer"):
        for r in range(rounds + 1):  # round 0 warms up
            for label, (ctx, step) in steps.items():
                with ctx():
                    start = time.perf_counter()
                    step()
                    elapsed = time.perf_counter() - start
                if r:
                    times[label].append(elapsed)
    return {label: batch / min(t) for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--models", nargs="+", default=["shufflenet_v2_x1_0", "shufflenet_v1_g3_x1_0"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, best of {args.rounds} interleaved rounds")
    for model in args.models:
        entries = contestants(model)
        ref_label = entries[0][0]
        for mode, what in (("train", "training step, batch 64 at 64x64"), ("infer", "inference, batch 32 at 224")):
            rates = race(entries, mode, args.rounds)
            print(f"\n{model}: {what} (images/s; ratio vs {ref_label} NCHW, vs reference in the same format)")
            for label, rate in rates.items():
                same_format_ref = ref_label + (" channels_last" if "channels_last" in label else "")
                print(f"  {label:<32} {rate:8.1f}   x{rate / rates[ref_label]:.2f}   x{rate / rates[same_format_ref]:.2f}")


if __name__ == "__main__":
    main()
