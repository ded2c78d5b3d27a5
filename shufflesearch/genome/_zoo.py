"""The papers' architectures as `Arch` values.

ShuffleNet v1 (Zhang et al., arXiv 1707.01083, Table 1) and ShuffleNet V2 (Ma et al., arXiv 1807.11164,
Table 5, layer for layer as torchvision builds it). Choices the v1 paper leaves open:

* width scale ``s`` multiplies the stage widths of Table 1, rounded to the nearest multiple of
  ``groups`` (`round_to_multiple`); the bottleneck is 1/4 of a unit's output, rounded the same way;
* the stem has 12 channels below 1x, 24 at 1x and 1.5x and 48 at 2x (megvii's ShuffleNet-Series
  widths), rounded down to a multiple of ``groups`` so stage 2's concat divides (8 for g=8 below 1x,
  where megvii uses 16 at 0.5x); this lands 0.5x and 0.25x on the paper's ~38 M and ~13 M;
* stage 2's first pointwise conv is not grouped (the paper's rule).
"""

from __future__ import annotations

from shufflesearch.genome._arch import Arch, Head, Stage, Stem, round_to_multiple

V1_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960), 4: (272, 544, 1088),
             8: (384, 768, 1536)}
V1_SCALES = {"0_25": 0.25, "0_5": 0.5, "1_0": 1.0, "1_5": 1.5, "2_0": 2.0}
V2_WIDTHS = {"0_5": ((48, 96, 192), 1024), "1_0": ((116, 232, 464), 1024),
             "1_5": ((176, 352, 704), 1024), "2_0": ((244, 488, 976), 2048)}
REPEATS = (4, 8, 4)


def shufflenet_v1(groups: int, scale: float) -> Arch:
    """ShuffleNet v1 with `groups` in {1, 2, 3, 4, 8} at width `scale` (Table 1 is scale 1)."""
    widths = [round_to_multiple(w * scale, groups) for w in V1_WIDTHS[groups]]
    stages = tuple(
        Stage("v1", out_channels=w, repeats=r, groups=groups, grouped_first_conv=(i > 0))
        for i, (w, r) in enumerate(zip(widths, REPEATS))
    )
    stem_width = 12 if scale < 1 else 24 if scale < 2 else 48
    stem = max(groups, stem_width // groups * groups)
    return Arch(stages=stages, stem=Stem(channels=stem))


def shufflenet_v2(widths: tuple[int, int, int], conv5: int) -> Arch:
    """ShuffleNet V2 with stage widths `widths` and a 1x1 conv5 of `conv5` channels."""
    stages = tuple(Stage("v2", out_channels=w, repeats=r) for w, r in zip(widths, REPEATS))
    return Arch(stages=stages, stem=Stem(channels=24), head=Head(conv_channels=conv5))


ZOO: dict[str, Arch] = {
    **{f"shufflenet_v1_g{g}_x{tag}": shufflenet_v1(g, s) for g in V1_WIDTHS for tag, s in V1_SCALES.items()},
    **{f"shufflenet_v2_x{tag}": shufflenet_v2(*spec) for tag, spec in V2_WIDTHS.items()},
}
