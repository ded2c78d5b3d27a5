"""`cost()` is exact: MACs == FlopCounterMode total / 2 and params == sum(p.numel()) of the built model.

Checked on the whole zoo (64x64 for all, 224 for a few) and on 300+ random valid genomes at small odd
and even input sizes, which cover every shuffle placement, kernels 3/5/7, mixed v1/V2 stages,
stride-1 stages, with/without head conv, stem stride 1 and no max-pool, and several class counts.
"""

import random

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from shufflesearch import Arch, build, cost
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.genome._arch import V1_SHUFFLES, V2_SHUFFLES, Head, Stage, Stem
from shufflesearch.genome._zoo import ZOO

pytestmark = pytest.mark.usefixtures("one_thread")

N_RANDOM = 320


def measured(arch: Arch, size: int, num_classes: int = 1000, in_chans: int = 3) -> tuple[int, int]:
    model = build(arch, num_classes=num_classes, in_chans=in_chans).eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.randn(1, in_chans, size, size))
    flops = counter.get_total_flops()
    assert flops % 2 == 0
    return flops // 2, sum(p.numel() for p in model.parameters())


def random_stage(rng: random.Random, cin: int) -> Stage:
    kernel = rng.choice((3, 5, 7))
    if rng.random() < 0.5:  # v2; a stride-1 stage keeps the (even) width
        stride = 1 if cin % 2 == 0 and rng.random() < 0.25 else 2
        out = cin if stride == 1 else 2 * rng.randint(4, 40)
        return Stage("v2", out, rng.randint(1, 3), stride=stride, kernel_size=kernel,
                     shuffle=rng.choice(V2_SHUFFLES))
    groups = rng.choice([g for g in (1, 2, 3, 4, 8) if cin % g == 0])
    stride = 1 if rng.random() < 0.25 else 2
    out = cin if stride == 1 else cin + groups * rng.randint(1, 64 // groups)
    return Stage("v1", out, rng.randint(1, 3), stride=stride, groups=groups, kernel_size=kernel,
                 bottleneck_ratio=rng.choice((0.25, 0.5, 1 / 3, 1.0)), grouped_first_conv=rng.random() < 0.5,
                 shuffle=rng.choice(V1_SHUFFLES))


def random_arch(rng: random.Random) -> Arch:
    stem = Stem(channels=rng.choice((6, 8, 12, 16, 24)), stride=rng.choice((1, 2)), max_pool=rng.random() < 0.5)
    stages, cin = [], stem.channels
    for _ in range(rng.randint(1, 4)):
        stages.append(random_stage(rng, cin))
        cin = stages[-1].out_channels
    head = Head(conv_channels=rng.choice((None, rng.randint(8, 96))))
    return Arch(stages=tuple(stages), stem=stem, head=head)


def random_genomes(n: int, seed: int = 0) -> list[Arch]:
    rng, out = random.Random(seed), []
    while len(out) < n:
        try:
            out.append(random_arch(rng))
        except ShuffleSearchError:  # e.g. a bottleneck rounding the groups do not divide
            pass
    return out


GENOMES = random_genomes(N_RANDOM)


def test_random_genomes_cover_the_genome_space():
    stages = [s for a in GENOMES for s in a.stages]
    assert {s.shuffle for s in stages} == set(V1_SHUFFLES) | set(V2_SHUFFLES)
    assert {s.kernel_size for s in stages} == {3, 5, 7}
    assert {s.stride for s in stages} == {1, 2} and {s.groups for s in stages} == {1, 2, 3, 4, 8}
    assert any({s.unit for s in a.stages} == {"v1", "v2"} for a in GENOMES)
    assert {(a.stem.stride, a.stem.max_pool) for a in GENOMES} == {(1, False), (1, True), (2, False), (2, True)}
    assert {a.head.conv_channels is None for a in GENOMES} == {True, False}
    assert len({a.hash for a in GENOMES}) == len(GENOMES)


@pytest.mark.parametrize("chunk", range(8))
def test_cost_is_exact_on_random_genomes(chunk):
    rng = random.Random(chunk)
    for arch in GENOMES[chunk::8]:
        size, classes, in_chans = rng.choice((17, 32, 33)), rng.choice((1, 10, 1000)), rng.choice((1, 3))
        c = cost(arch, size, classes, in_chans)
        assert (c.macs, c.params) == measured(arch, size, classes, in_chans), arch.to_json()


@pytest.mark.parametrize("name", list(ZOO))
def test_cost_is_exact_on_the_zoo(name):
    c = cost(ZOO[name], 64)
    assert (c.macs, c.params) == measured(ZOO[name], 64)


@pytest.mark.parametrize("name", ["shufflenet_v1_g3_x1_0", "shufflenet_v1_g8_x0_5", "shufflenet_v2_x1_0"])
def test_cost_is_exact_at_224(name):
    c = cost(ZOO[name])
    assert (c.macs, c.params) == measured(ZOO[name], 224)
    assert c.mflops == c.macs / 1e6
