"""How well does the proxy rank architectures? Proxy accuracy (several seeds) vs a 5x longer training.

For zoo models spanning the cost range, train each on a Fashion-MNIST subset with the proxy settings
under study (`--proxy-epochs`, 3 seeds each) and once with `--ref-epochs`; print per model the mean
and seed-to-seed standard deviation of proxy val accuracy, the reference accuracy, and per setting the
Spearman rank correlation with the reference: of the seed-mean, and the mean over single seeds (what
a search that trains each trial once sees). MACs' own Spearman with the reference is the baseline a
proxy must beat. Runs `--workers` processes of 1 thread each.

    apt-get install dataset-fashion-mnist
    PYTHONPATH=. python benchmarks/proxy_ranking_study.py --out runs/proxy_ranking_study.json
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import time

from scipy.stats import spearmanr

from shufflesearch import TrainConfig, cost, load_data, train_proxy
from shufflesearch.zoo import ZOO

MODELS = ["shufflenet_v1_g3_x0_25", "shufflenet_v1_g8_x0_25", "shufflenet_v2_x0_5", "shufflenet_v1_g3_x0_5",
          "shufflenet_v2_x1_0", "shufflenet_v1_g3_x1_0", "shufflenet_v2_x1_5"]
_DATA = None


def _init(data_kwargs: dict) -> None:
    global _DATA
    _DATA = load_data(**data_kwargs)


def _run(job: tuple[str, int, int, dict]) -> tuple[str, int, int, float, float]:
    name, epochs, seed, train_kwargs = job
    result = train_proxy(ZOO[name], _DATA, TrainConfig(epochs=epochs, seed=seed, threads=1, **train_kwargs))
    return name, epochs, seed, result.final["val_acc"] if result.final else 0.0, result.train_seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="fashion_mnist:/usr/share/datasets/fashion-mnist")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--subset-per-class", type=int, default=200)
    p.add_argument("--val-per-class", type=int, default=100)
    p.add_argument("--proxy-epochs", default="3,6", help="comma-separated proxy lengths to compare")
    p.add_argument("--ref-epochs", type=int, default=30)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--lr", type=float, default=TrainConfig.lr)
    p.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    p.add_argument("--warmup-epochs", type=int, default=1)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--out", help="write the raw results as JSON here")
    args = p.parse_args()
    models = args.models.split(",")
    proxy_epochs = [int(e) for e in args.proxy_epochs.split(",")]
    data_kwargs = dict(spec=args.data, image_size=args.image_size, subset_per_class=args.subset_per_class,
                       val_per_class=args.val_per_class)
    train_kwargs = dict(lr=args.lr, batch_size=args.batch_size, warmup_epochs=args.warmup_epochs)
    data = load_data(**data_kwargs)
    print(data.summary(), f"| {train_kwargs}, {args.workers} workers x 1 thread")
    jobs = [(m, e, s, train_kwargs) for m in models for e in proxy_epochs for s in range(args.seeds)]
    jobs += [(m, args.ref_epochs, 100, train_kwargs) for m in models]
    macs = {m: cost(ZOO[m], data.image_size, data.num_classes, data.in_chans).macs for m in models}
    jobs.sort(key=lambda j: -macs[j[0]] * j[1])  # longest first keeps the workers busy to the end
    start = time.perf_counter()
    with mp.get_context("spawn").Pool(args.workers, _init, (data_kwargs,)) as pool:
        rows = pool.map(_run, jobs, chunksize=1)
    wall = time.perf_counter() - start
    acc = {(m, e, s): a for m, e, s, a, _ in rows}
    secs = {(m, e, s): t for m, e, s, _, t in rows}
    ref = [acc[m, args.ref_epochs, 100] for m in models]

    head = f"{'model':<24} {'MMACs':>6} {'ref acc':>8}"
    for e in proxy_epochs:
        head += f" | {e:>2} ep: mean  sd    s/run"
    print(f"\nproxy accuracy ({args.seeds} seeds) vs {args.ref_epochs}-epoch reference; "
          f"{data.image_size}px, {len(data.train_y)} train / {len(data.val_y)} val images")
    print(head)
    summary = {}
    for m, r in zip(models, ref):
        line = f"{m:<24} {macs[m] / 1e6:6.2f} {r:8.4f}"
        for e in proxy_epochs:
            vals = [acc[m, e, s] for s in range(args.seeds)]
            line += (f" |        {statistics.mean(vals):.4f} {statistics.stdev(vals):.4f} "
                     f"{statistics.mean(secs[m, e, s] for s in range(args.seeds)):5.1f}")
        print(line)
    print(f"\nSpearman vs reference: MACs alone {spearmanr([macs[m] for m in models], ref)[0]:+.3f}")
    for e in proxy_epochs:
        means = [statistics.mean(acc[m, e, s] for s in range(args.seeds)) for m in models]
        singles = [spearmanr([acc[m, e, s] for m in models], ref)[0] for s in range(args.seeds)]
        sd = statistics.mean(statistics.stdev(acc[m, e, s] for s in range(args.seeds)) for m in models)
        summary[e] = dict(spearman_mean=spearmanr(means, ref)[0], spearman_single=singles, seed_sd=sd)
        print(f"  {e:>2} epochs: seed-mean {summary[e]['spearman_mean']:+.3f}, single seeds "
              f"{' '.join(f'{x:+.3f}' for x in singles)} (mean {statistics.mean(singles):+.3f}); "
              f"mean seed sd {sd:.4f}")
    print(f"wall {wall:.0f}s")
    if args.out:
        from shufflesearch._io import write_json_atomic
        write_json_atomic(args.out, dict(args=vars(args), models=models, macs=macs, ref=ref, summary=summary,
                                         runs=[dict(zip(("model", "epochs", "seed", "val_acc", "train_seconds"), r))
                                               for r in rows], wall_seconds=wall))


if __name__ == "__main__":
    main()
