"""Does the proxy rank architectures the way the final protocol does? (issue 11)

Architectures: `--archs` sampled from a shipped space (default search_spaces/demo.yaml at its own
30 MFLOPs budget) with Optuna's RandomSampler, stratified by cost (a pool of 20x as many samples; for
each of `--archs` targets spread evenly in log-MACs across the budget band [min_fraction, 1] x budget
the nearest unused sample), plus every zoo model whose cost lies in that band.

Reference (the final protocol, `load_data(config, "test")`): Fashion-MNIST, `--ref-per-class` training
images per class (the whole training split is the pool, search-validation included), `--ref-epochs`
epochs, scored on the whole t10k test split; `--seeds` seeds each (1, 2, ...). Kendall tau between two
reference seeds is the noise ceiling: how well one reference training ranks like another.

Proxies (`load_data(config)`: train on the training split minus the search-validation split, scored on
300 search-validation images per class; seed 0, one training each, as a search trains a trial):
five settings at about equal CPU cost (the "CPU s / arch" column measures it: the worker's CPU time;
on the noise-ceiling row it is one reference training), plus FLOPs alone and parameters alone (at the
trained resolution) as the baselines a proxy must beat. Every training uses the shipped `proxy:` recipe
(`TrainConfig()`: SGD lr 0.05, linear decay, 1 warm-up epoch, BN re-estimation) and differs only in
epochs, images and resolution.

Per score: Kendall tau and Spearman rho against the mean reference accuracy, with 95% bootstrap
intervals (architectures resampled, `--bootstrap` times, the same resamples for every score, so the
paired difference to FLOPs alone has an interval too), top-1 and top-5 regret (best reference
accuracy minus the best reference accuracy among the score's top-k). Jobs run in `--workers` processes
of one torch thread; every finished job is written at once to `<out>/proxy_ranking_study.json`, and a
rerun with the same configuration skips the finished ones. At the end: a Markdown table on stdout and
`<out>/proxy_ranking_study.png` (reference vs each score, small multiples).

Sizing (measured first on this machine, 1 thread, 32 px, batch 64): demo-space models train at
3,300-7,900 images/s (0.07-0.47 MMACs at 32 px), the 13-MFLOPs zoo v1 x0.25 models (16 units deep)
at ~2,400; 28 px runs at the speed of 32 px and 16 px at ~1.5x it (per-layer overhead dominates these
tiny models, so the 16 px setting gets 1.5x the images). Each proxy setting is ~30k image-steps at
32 px (6 epochs x 500/class, 2 x 1,500, 1 x 3,000, 6 x 500 at 28 px, 6 x 750 at 16 px), ~10 s per
architecture; the reference is 8 epochs x 1,200/class (96k image-steps plus 8 scorings of 10k test
images), ~30 s per seed. 35 architectures x (5 proxies + 2 reference seeds) = 245 jobs. Measured: 58
CPU minutes, so ~30 minutes on 2 otherwise idle cores (the recorded run took 93 minutes of wall time
at nice 19 beside other test runs on the same 2 cores).

In band (issue 30.2): a global tau over 7.5-30 MFLOPs is dominated by cost, while a search decides near
the budget. `--band-archs` more samples (RandomSampler seed `--band-seed`, spread evenly in log cost across
[`--band`, 1] x budget, none equal to an earlier one; named b00.. in an order that spans the band at
every prefix) train after the stratified study, one architecture after another, under the same proxies
and reference; they sit in config["band"], so the recorded jobs stay valid. The tables are then given
globally and within the band (every landmark at >= `--band` x budget), and
`<out>/proxy_ranking_study.md` holds them all; `<out>/proxy_ranking_study_landmarks.json` lists every
finished landmark (genome, MFLOPs, in_band, reference accuracy per seed, proxy accuracies): what
benchmarks/supernet_study.py scores on a supernet. `--report-only` rewrites these from the finished jobs.

    apt-get install dataset-fashion-mnist
    nice -n 19 python benchmarks/proxy_ranking_study.py            # full size, ~30 min on 2 idle cores
    python benchmarks/proxy_ranking_study.py --quick                 # smoke run, < 1 min, to runs/
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import multiprocessing as mp
import os
import platform
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from scipy.stats import ConstantInputWarning, kendalltau, rankdata, spearmanr

from shufflesearch import Arch, SearchSpace, TrainConfig, cost, train_proxy
from shufflesearch._io import write_bytes_atomic, write_json_atomic
from shufflesearch.data import load_data
from shufflesearch.data._data import ProxyData
from shufflesearch.genome._zoo import ZOO
from shufflesearch.space._configs import DataConfig

RESULT = "proxy_ranking_study"
PROXY_SEED = 0  # the reference seeds are 1..--seeds: no proxy shares an initialisation with a reference


@dataclass(frozen=True)
class Protocol:
    """A way to score an architecture: `epochs` on `per_class` images per class at `image_size` px."""
    label: str
    epochs: int
    per_class: int
    image_size: int
    split: str = "search"  # "search": the proxy; "test": the final protocol

    @property
    def work(self) -> float:
        """Relative CPU cost, for ordering jobs and the ETA (16 px measured ~1.5x faster than 32 px)."""
        return self.epochs * self.per_class * (1 + (self.image_size / 32) ** 2) / 2


PROXIES = {
    "e6_n500_r32": Protocol("6 ep x 500/class, 32 px (shipped)", 6, 500, 32),
    "e2_n1500_r32": Protocol("2 ep x 1,500/class, 32 px", 2, 1500, 32),
    "e1_n3000_r32": Protocol("1 ep x 3,000/class, 32 px", 1, 3000, 32),
    "e6_n500_r28": Protocol("6 ep x 500/class, 28 px", 6, 500, 28),
    "e6_n750_r16": Protocol("6 ep x 750/class, 16 px", 6, 750, 16),
}
SEARCH_PER_CLASS = 300  # search-validation images scored per class (3,000 of the 12,000 carved)

_DATA: dict[tuple[DataConfig, str], ProxyData] = {}  # per worker: each dataset loaded once


def _run(job: tuple[str, Arch, str, Protocol, int, DataConfig]) -> tuple[str, dict]:
    arch_name, arch, setting, proto, seed, data_cfg = job
    if (data_cfg, proto.split) not in _DATA:
        _DATA[data_cfg, proto.split] = load_data(data_cfg, proto.split)
    data = _DATA[data_cfg, proto.split]
    cpu = time.process_time()
    result = train_proxy(arch, data, TrainConfig(epochs=proto.epochs, seed=seed, threads=1))
    cpu = time.process_time() - cpu
    final = result.final or {}
    return job_key(arch_name, setting, seed), {
        "arch": arch_name, "setting": setting, "seed": seed, "split": data.eval_split, "status": result.status,
        "acc": final.get(data.acc_key, 0.0), "loss": final.get(f"{data.eval_split}_loss", math.nan),
        "train_images": len(data.train_y), "eval_images": len(data.eval_y), "epochs": result.epochs,
        "seconds": result.seconds, "cpu_seconds": cpu, "train_seconds": result.train_seconds,
        "eval_seconds": result.eval_seconds}


def job_key(arch_name: str, setting: str, seed: int) -> str:
    return f"{arch_name}/{setting}/{seed}"


def sample_archs(space: SearchSpace, n: int, seed: int) -> dict[str, Arch]:
    """`n` budget-feasible samples of `space`, spread evenly in log-cost across its budget band."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    pool: dict[str, Arch] = {}
    for _ in range(20 * n):
        arch = space.sample(study.ask())
        if arch is not None:
            pool[arch.hash] = arch
    chosen = _spread(space, pool, n, space.budget.min_fraction)
    return {f"s{i:02d}": a for i, a in enumerate(chosen)}


def _spread(space: SearchSpace, pool: dict[str, Arch], n: int, fraction: float) -> list[Arch]:
    """For each of `n` targets spread evenly in log-cost across [fraction, 1] x budget, the nearest unused
    architecture of `pool`; cheapest first."""
    lo, hi = math.log(fraction * space.budget.macs), math.log(space.budget.macs)
    chosen: list[Arch] = []
    for i in range(n):
        target = lo + (i + 0.5) / n * (hi - lo)
        pick = min((a for a in pool.values() if a not in chosen),
                   key=lambda a: abs(math.log(space.cost(a).macs) - target))
        chosen.append(pick)
    return sorted(chosen, key=lambda a: space.cost(a).macs)


def sample_band(space: SearchSpace, n: int, fraction: float, seed: int, taken: list[Arch]) -> dict[str, Arch]:
    """`n` more samples of `space` near its budget, cost in [fraction, 1] x budget, spread evenly in log-cost;
    none equal to one in `taken`. Named b00.. in the order they train: the first k are spread across the band
    too (every other target of a bisection order), so a study cut off early still spans it."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    lo = math.log(fraction * space.budget.macs)
    taken_hashes = {a.hash for a in taken}
    pool: dict[str, Arch] = {}
    for _ in range(500 * n):
        if len(pool) >= 20 * n:
            break
        arch = space.sample(study.ask())
        if arch is not None and arch.hash not in taken_hashes and math.log(space.cost(arch).macs) >= lo:
            pool[arch.hash] = arch
    chosen = _spread(space, pool, n, fraction)
    order = sorted(range(n), key=lambda i: (_bit_reversed(i, n), i))
    return {f"b{k:02d}": chosen[i] for k, i in enumerate(order)}


def _bit_reversed(i: int, n: int) -> float:
    """Van der Corput position of i: 0, 1/2, 1/4, 3/4, ... (an order that covers [0, n) evenly at every prefix)."""
    bits = max(1, (n - 1).bit_length())
    return int(format(i, f"0{bits}b")[::-1], 2) / 2 ** bits


def zoo_in_band(space: SearchSpace) -> dict[str, Arch]:
    lo = space.budget.min_fraction * space.budget.macs
    return {name: a for name, a in ZOO.items() if lo <= space.cost(a).macs <= space.budget.macs}


# --- statistics ------------------------------------------------------------------------------
def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return kendalltau(x, y).statistic


def _rho(x: np.ndarray, y: np.ndarray) -> float:
    return spearmanr(x, y).statistic


def regret(score: np.ndarray, ref: np.ndarray, k: int) -> float:
    """Best reference accuracy minus the best reference accuracy among the `k` best by `score`."""
    top = np.argsort(-score, kind="stable")[:k]
    return float(ref.max() - ref[top].max())


def _boot_tau_rho(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b and Spearman rho of each row pair of `x`, `y` (resamples x architectures) at once: what
    scipy's kendalltau and spearmanr give row by row (nan for a constant row), ~100x faster."""
    dx = np.sign(x[:, :, None] - x[:, None, :])
    dy = np.sign(y[:, :, None] - y[:, None, :])
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (dx * dy).sum((1, 2)) / np.sqrt((dx * dx).sum((1, 2)) * (dy * dy).sum((1, 2)))
        rx, ry = rankdata(x, axis=1), rankdata(y, axis=1)
        rx, ry = rx - rx.mean(1, keepdims=True), ry - ry.mean(1, keepdims=True)
        rho = (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))
    return np.stack([tau, rho], 1)


def rank_table(scores: dict[str, tuple[np.ndarray, np.ndarray]], n_boot: int, seed: int) -> dict[str, dict]:
    """Per score (values, target): tau, rho, bootstrap intervals, paired delta-tau to 'flops', regret."""
    warnings.simplefilter("ignore", ConstantInputWarning)  # a resample of one architecture repeated: nan, skipped
    n = len(next(iter(scores.values()))[0])
    resamples = np.random.default_rng(seed).integers(0, n, (n_boot, n))
    boot = {name: _boot_tau_rho(x[resamples], y[resamples]) for name, (x, y) in scores.items()}
    out = {}
    for name, (x, y) in scores.items():
        delta = boot[name][:, 0] - boot["flops"][:, 0]
        out[name] = {
            "tau": _tau(x, y), "tau_ci": np.nanpercentile(boot[name][:, 0], [2.5, 97.5]).tolist(),
            "rho": _rho(x, y), "rho_ci": np.nanpercentile(boot[name][:, 1], [2.5, 97.5]).tolist(),
            "dtau_flops": _tau(x, y) - _tau(*scores["flops"]),
            "dtau_flops_ci": np.nanpercentile(delta, [2.5, 97.5]).tolist(),
            "regret1": regret(x, y, 1), "regret5": regret(x, y, 5)}
    return out


# --- output ----------------------------------------------------------------------------------
def markdown(stats: dict[str, dict], labels: dict[str, str], cpu: dict[str, float]) -> str:
    lines = ["| score | CPU s / arch | Kendall τ [95% CI] | Spearman ρ [95% CI] | τ − τ(FLOPs) [95% CI] "
             "| top-1 regret | top-5 regret |", "|---|---|---|---|---|---|---|"]
    for name, s in stats.items():
        ci = "[{:+.2f}, {:+.2f}]"
        dtau = "—" if name in ("flops", "ceiling") else f"{s['dtau_flops']:+.2f} {ci.format(*s['dtau_flops_ci'])}"
        lines.append(f"| {labels[name]} | {cpu.get(name, 0.0):.1f} | {s['tau']:+.2f} {ci.format(*s['tau_ci'])} "
                     f"| {s['rho']:+.2f} {ci.format(*s['rho_ci'])} | {dtau} "
                     f"| {100 * s['regret1']:.2f} pt | {100 * s['regret5']:.2f} pt |")
    return "\n".join(lines)


def plot(path: Path, scores: dict[str, tuple[np.ndarray, np.ndarray]], stats: dict[str, dict],
         band_stats: dict[str, dict], labels: dict[str, str], zoo: np.ndarray, band: np.ndarray, fraction: float,
         ref_label: str) -> None:
    cols = 4
    rows = math.ceil(len(scores) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.6 * rows), layout="constrained")
    for i, (name, (x, y)) in enumerate(scores.items()):
        ax = fig.add_subplot(rows, cols, i + 1)
        if name in ("flops", "params"):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
        else:
            x = 100 * x
        ax.scatter(x[~zoo & ~band], 100 * y[~zoo & ~band], s=18, c="tab:blue", label="sampled")
        ax.scatter(x[band], 100 * y[band], s=18, c="tab:orange", label=f"sampled, in band (>= {fraction:g} x budget)")
        ax.scatter(x[zoo], 100 * y[zoo], s=30, c="tab:green", marker="^", label="zoo")
        s, b = stats[name], band_stats[name]
        ax.set_title(f"{labels[name]}\nall: τ {s['tau']:+.2f} ρ {s['rho']:+.2f} | in band: τ {b['tau']:+.2f} "
                     f"[{b['tau_ci'][0]:+.2f}, {b['tau_ci'][1]:+.2f}]", fontsize=8)
        ax.set_xlabel("first reference seed, test acc %" if name == "ceiling" else
                      {"flops": "MACs at 32 px", "params": "parameters"}.get(name, "search-val acc % (proxy)"),
                      fontsize=8)
        ax.set_ylabel("second seed, test acc %" if name == "ceiling" else ref_label, fontsize=8)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes_atomic(path, buf.getvalue())


def _differs(old, new, path: str = "config") -> str | None:
    """Where the recorded configuration `old` differs from `new`, or None. A key `new` has and `old` lacks is
    a field added since the study was recorded (a TrainConfig or DataConfig field at its default, the band):
    it changes none of the recorded jobs."""
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old:
            if k not in new:
                return f"{path}.{k}: recorded, not in this version"
            if differs := _differs(old[k], new[k], f"{path}.{k}"):
                return differs
        return None
    return None if old == new else f"{path}: recorded {old!r}, now {new!r}"


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="search_spaces/demo.yaml")
    p.add_argument("--budget", type=float, help="MFLOPs (default: the space's)")
    p.add_argument("--archs", type=int, default=30, help="sampled architectures (zoo models in band are added)")
    p.add_argument("--seeds", type=int, default=2, help="reference trainings per architecture")
    p.add_argument("--ref-epochs", type=int, default=8)
    p.add_argument("--ref-per-class", type=int, default=1200)
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist", help="Fashion-MNIST IDX directory")
    p.add_argument("--out", help=f"results folder (default benchmarks/results; --quick: runs/{RESULT}_quick)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--bootstrap", type=int, default=2000)
    p.add_argument("--sample-seed", type=int, default=0)
    p.add_argument("--band", type=float, default=0.7,
                   help="the in-band table: landmarks at cost >= BAND x budget (issue 30.2)")
    p.add_argument("--band-archs", type=int, default=24,
                   help="more sampled architectures in [BAND, 1] x budget, added to the stratified ones")
    p.add_argument("--band-seed", type=int, default=1, help="RandomSampler seed of the in-band samples")
    p.add_argument("--report-only", action="store_true",
                   help="train nothing: the tables, plot and landmarks from the finished jobs (a study may be running)")
    p.add_argument("--quick", action="store_true", help="smoke run: 4 archs + 1 zoo model, 1/10 of the images")
    args = p.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = SearchSpace.from_yaml(args.space)
    if args.budget:
        space = space.with_budget(args.budget)
    archs = sample_archs(space, 4 if args.quick else args.archs, args.sample_seed)
    zoo = zoo_in_band(space)
    if args.quick:
        zoo = dict(list(zoo.items())[:1])
    archs.update(zoo)
    band = sample_band(space, 3 if args.quick else args.band_archs, args.band, args.band_seed, list(archs.values()))
    proxies = dict(PROXIES)
    ref = Protocol(f"reference: {args.ref_epochs} ep x {args.ref_per_class:,}/class, 32 px, t10k",
                   args.ref_epochs, args.ref_per_class, 32, "test")
    search_per_class, test_per_class = SEARCH_PER_CLASS, None
    if args.quick:
        proxies = {k: replace(v, epochs=min(v.epochs, 2), per_class=v.per_class // 10) for k, v in proxies.items()}
        ref = replace(ref, epochs=2, per_class=100)
        search_per_class, test_per_class, args.bootstrap = 30, 50, 200
    out = Path(args.out or (f"runs/{RESULT}_quick" if args.quick else "benchmarks/results"))
    raw_path, png_path = out / f"{RESULT}.json", out / f"{RESULT}.png"

    def data_cfg(proto: Protocol) -> DataConfig:
        return DataConfig(f"fashion_mnist:{args.data}", image_size=proto.image_size, subset_per_class=proto.per_class,
                          search_per_class=search_per_class, test_per_class=test_per_class)

    ref_seeds = list(range(1, args.seeds + 1))
    trained = {name: cost(a, 32, 10, 1) for name, a in {**archs, **band}.items()}  # what the reference trains
    config = json.loads(json.dumps({
        "space": space.source, "budget_mflops": space.budget.mflops, "sample_seed": args.sample_seed,
        "archs": {name: a.to_json() for name, a in archs.items()}, "zoo": list(zoo),
        "proxies": {k: asdict(v) for k, v in proxies.items()}, "reference": asdict(ref), "ref_seeds": ref_seeds,
        "proxy_seed": PROXY_SEED, "data": {k: asdict(data_cfg(v)) for k, v in {**proxies, "reference": ref}.items()},
        "train": asdict(TrainConfig(threads=1)), "workers": args.workers,
        # the in-band landmarks (issue 30.2): apart from "archs", so the stratified study's configuration, its jobs
        # and the readers of config["archs"] (supernet_study.py) stay as they were
        "band": {"fraction": args.band, "sample_seed": args.band_seed,
                 "archs": {name: a.to_json() for name, a in band.items()}}}))
    state = {"config": config, "jobs": {}, "sessions": []}
    if raw_path.exists():
        state = json.loads(raw_path.read_text())
        # workers change no result; a study recorded before the band had none: it is added, the jobs reused
        if differs := _differs(state["config"], {**config, "workers": state["config"]["workers"]}):
            raise SystemExit(f"{raw_path} holds a study with another configuration ({differs}): pass another "
                             "--out or delete it to start over")
        state["config"]["band"] = config["band"]

    jobs = [(name, a, "reference", ref, seed, data_cfg(ref)) for name, a in archs.items() for seed in ref_seeds]
    jobs += [(name, a, k, v, PROXY_SEED, data_cfg(v)) for name, a in archs.items() for k, v in proxies.items()]
    jobs.sort(key=lambda j: -j[3].work * (1 + trained[j[0]].macs / 1e5))  # longest first: workers end together
    # then the band's, one architecture after another (b00 first): a study cut off early has whole landmarks
    jobs += [job for name, a in band.items() for job in
             [(name, a, "reference", ref, seed, data_cfg(ref)) for seed in ref_seeds]
             + [(name, a, k, v, PROXY_SEED, data_cfg(v)) for k, v in proxies.items()]]
    todo = [] if args.report_only else [j for j in jobs if job_key(j[0], j[2], j[4]) not in state["jobs"]]
    print(f"{space.source} at {space.budget.mflops:g} MFLOPs: {len(archs) - len(zoo)} sampled + {len(zoo)} zoo "
          f"+ {len(band)} in [{args.band:g}, 1] x budget architectures ({min(c.macs for c in trained.values()) / 1e6:.3f}-"
          f"{max(c.macs for c in trained.values()) / 1e6:.3f} MMACs at 32 px); {len(jobs)} jobs, "
          f"{sum(job_key(j[0], j[2], j[4]) in state['jobs'] for j in jobs)} done already; {args.workers} workers x 1 thread -> {raw_path}", flush=True)
    total_work = sum(j[3].work for j in todo)
    start, done_work = time.perf_counter(), 0.0
    session = {"jobs": 0, "wall_seconds": 0.0, "workers": args.workers}
    if todo:
        state["sessions"].append(session)
    with mp.get_context("spawn").Pool(args.workers) if todo else contextlib.nullcontext() as pool:
        for key, row in pool.imap_unordered(_run, todo) if todo else ():
            elapsed = time.perf_counter() - start
            state["jobs"][key] = row
            session.update(jobs=session["jobs"] + 1, wall_seconds=elapsed)
            write_json_atomic(raw_path, state)
            done_work += proxies.get(row["setting"], ref).work
            print(f"[{len(state['jobs']):3d}/{len(jobs)}] {key:<36} {row['split']}_acc {row['acc']:.4f} "
                  f"{row['status']:<8} {row['cpu_seconds']:5.1f} CPU s | {_clock(elapsed)} elapsed, ETA "
                  f"{_clock(elapsed * (total_work - done_work) / done_work)}", flush=True)

    rows = state["jobs"]
    keys = [("reference", s) for s in ref_seeds] + [(k, PROXY_SEED) for k in proxies]
    every = {**archs, **band}
    names = [n for n in every if all(job_key(n, k, s) in rows for k, s in keys)]  # whole landmarks only
    missing = [n for n in every if n not in names]
    ref_acc = np.array([[rows[job_key(n, "reference", s)]["acc"] for s in ref_seeds] for n in names])
    target = ref_acc.mean(1)
    scores = {k: (np.array([rows[job_key(n, k, PROXY_SEED)]["acc"] for n in names]), target) for k in proxies}
    scores["flops"] = (np.array([trained[n].macs for n in names], float), target)
    scores["params"] = (np.array([trained[n].params for n in names], float), target)
    if len(ref_seeds) > 1:
        scores["ceiling"] = (ref_acc[:, 0], ref_acc[:, 1])
    labels = {k: v.label for k, v in proxies.items()}
    labels.update(flops="FLOPs alone", params="parameters alone",
                  ceiling="noise ceiling: reference seed 1 vs seed 2")
    cpu = {k: float(np.mean([rows[job_key(n, k, PROXY_SEED)]["cpu_seconds"] for n in names])) for k in proxies}
    cpu["ceiling"] = float(np.mean([rows[job_key(n, "reference", s)]["cpu_seconds"] for n in names
                                    for s in ref_seeds]))
    zoo_mask = np.array([n in zoo for n in names])
    mflops = np.array([space.cost(every[n]).mflops for n in names])
    band_mask = mflops >= args.band * space.budget.mflops
    design = np.array([n in archs for n in names])  # the stratified study as recorded: 30 sampled + 5 zoo

    def table(mask: np.ndarray) -> dict[str, dict]:
        return rank_table({k: (x[mask], y[mask]) for k, (x, y) in scores.items()}, args.bootstrap, seed=0)

    subsets = {  # name: (mask, what it is)
        "band": (band_mask, f"in band: cost >= {args.band:g} x budget ({args.band * space.budget.mflops:g}-"
                            f"{space.budget.mflops:g} MFLOPs at 224 px), the stratified samples there + the band's"),
        "all": (np.ones(len(names), bool), "global: every landmark (stratified + zoo + band)"),
        "stratified": (design, "the stratified design as first recorded (sampled + zoo, 7.5-30 MFLOPs)"),
        "sampled_only": (design & ~zoo_mask, "the stratified samples alone (no zoo models)")}
    stats = {k: table(mask) for k, (mask, _) in subsets.items()}
    failed = [k for k, r in rows.items() if r["status"] != "complete"]
    noise = 100 * np.abs(ref_acc[:, 0] - ref_acc[:, -1])

    md = [f"# Proxy ranking study: {space.source} at {space.budget.mflops:g} MFLOPs, Fashion-MNIST\n",
          f"Written by `benchmarks/proxy_ranking_study.py` on {time.strftime('%Y-%m-%d')}, {platform.machine()}, "
          f"{os.cpu_count()} cores, no GPU (CPU, 1 torch thread per job). Reproduce: `nice -n 19 python "
          f"benchmarks/proxy_ranking_study.py` (finished jobs in {raw_path.name} are reused; `--report-only` "
          "rewrites this page from them).\n",
          f"Reference: {ref.label.removeprefix('reference: ')} (the test split), mean of seeds {ref_seeds}; proxies: seed {PROXY_SEED}, scored on "
          f"{search_per_class} search-validation images per class (the search split). {len(names)} landmarks: "
          f"{int((design & ~zoo_mask).sum())} stratified samples in [{space.budget.min_fraction:g}, 1] x budget, "
          f"{int(zoo_mask.sum())} zoo models, {len(names) - int(design.sum())} more samples in "
          f"[{args.band:g}, 1] x budget (sample seed {args.band_seed})"
          + (f"; not finished yet: {', '.join(missing)}" if missing else "") + ". "
          f"τ and ρ against the reference mean; 95% bootstrap intervals over landmarks ({args.bootstrap} resamples, "
          "the same for every score: τ − τ(FLOPs) is paired); regret: best reference accuracy minus the best "
          "among the score's top 1 / top 5. The noise ceiling is seed 1 against seed 2, each one training; "
          "a score is ranked against the mean of both, which is less noisy, so the ceiling is conservative: "
          "a noise-free score would reach ρ ≈ √(2r/(1+r)) against the mean, r the seed-vs-seed ρ "
          "(Spearman-Brown; the ceiling row's ρ interval maps through it).\n",
          f"## In band vs global, {int(band_mask.sum())} in-band / {len(names)} landmarks\n",
          "| score | CPU s / arch | global τ | global ρ | in-band τ | in-band ρ | in-band τ − τ(FLOPs) "
          "| in-band top-1 / top-5 regret |", "|---|---|---|---|---|---|---|---|"]
    ci = "{:+.2f} [{:+.2f}, {:+.2f}]"
    for k in stats["band"]:
        g, b = stats["all"][k], stats["band"][k]
        md.append(f"| {labels[k]} | {cpu.get(k, 0.0):.1f} | {ci.format(g['tau'], *g['tau_ci'])} "
                  f"| {ci.format(g['rho'], *g['rho_ci'])} | {ci.format(b['tau'], *b['tau_ci'])} "
                  f"| {ci.format(b['rho'], *b['rho_ci'])} | "
                  + ("—" if k in ("flops", "ceiling") else ci.format(b["dtau_flops"], *b["dtau_flops_ci"]))
                  + f" | {100 * b['regret1']:.2f} / {100 * b['regret5']:.2f} pt |")
    for k, (mask, what) in subsets.items():
        r, r_ci = stats[k]["ceiling"]["rho"], stats[k]["ceiling"]["rho_ci"]
        md += [f"\n## {what}: {int(mask.sum())} landmarks\n",
               "Noise ceiling against the 2-seed mean (Spearman-Brown from the seed-vs-seed ρ): ρ ≈ "
               + ci.format(*(math.sqrt(max(v, 0) * 2 / (1 + max(v, 0))) for v in (r, *r_ci))) + ".\n",
               f"Reference test accuracy {100 * target[mask].min():.2f}-{100 * target[mask].max():.2f}% "
               f"(sd {100 * target[mask].std(ddof=1):.2f} pt); mean |seed 1 − seed 2| {noise[mask].mean():.2f} pt.\n",
               markdown(stats[k], labels, cpu)]
    md += [f"\n## Per architecture (reference: seeds {' / '.join(map(str, ref_seeds))}, test split; "
           "proxies: search-validation accuracy)\n",
           "| arch | MFLOPs @224 | in band | MMACs @32 | params | reference | " + " | ".join(proxies) + " |",
           "|---|---|---|---|---|---|" + "---|" * len(proxies)]
    for i, n in enumerate(names):
        md.append(f"| {n} | {mflops[i]:.1f} | {'yes' if band_mask[i] else ''} | {trained[n].macs / 1e6:.3f} "
                  f"| {trained[n].params:,} | {' / '.join(f'{a:.4f}' for a in ref_acc[i])} | "
                  + " | ".join(f"{scores[k][0][i]:.4f}" for k in proxies) + " |")
    cpu_total = sum(r["cpu_seconds"] for r in rows.values())
    md.append(f"\nCompute: the jobs' CPU time {cpu_total / 60:.1f} min; wall "
              f"{sum(s['wall_seconds'] for s in state['sessions']) / 60:.1f} min over {len(state['sessions'])} "
              "session(s) at nice 19 on a shared machine"
              + (f"; not complete: {', '.join(failed)} (scored 0)" if failed else "") + ".")
    text = "\n".join(md) + "\n"
    print(text)
    md_path, lm_path = out / f"{RESULT}.md", out / f"{RESULT}_landmarks.json"
    write_bytes_atomic(md_path, text.encode())
    plot(png_path, scores, stats["all"], stats["band"], labels, zoo_mask, band_mask, args.band,
         "reference test acc %, seed mean")
    write_json_atomic(lm_path, {
        "about": "landmarks of the proxy ranking study: architectures with their reference accuracy (test split) "
                 "and proxy accuracies (search split); in_band: cost >= band_fraction x budget",
        "space": space.source, "budget_mflops": space.budget.mflops, "band_fraction": args.band,
        "reference": {**asdict(ref), "seeds": ref_seeds}, "proxy_seed": PROXY_SEED,
        "proxies": {k: asdict(v) for k, v in proxies.items()},
        "landmarks": {n: {"arch": every[n].to_json(),
                          "source": "zoo" if n in zoo else "stratified" if n in archs else "band",
                          "mflops": float(mflops[i]), "in_band": bool(band_mask[i]),
                          "macs_32px": trained[n].macs, "params_32px": trained[n].params,
                          "reference_acc": ref_acc[i].tolist(), "reference_mean": float(target[i]),
                          "proxy_acc": {k: float(scores[k][0][i]) for k in proxies}}
                      for i, n in enumerate(names)},
        "stats": stats, "cpu_seconds_per_arch": cpu})
    if not args.report_only:  # a running study owns the raw file
        state["summary"] = {"stats": stats["stratified"], "stats_sampled_only": stats["sampled_only"],
                            "stats_all": stats["all"], "stats_band": stats["band"], "cpu_seconds_per_arch": cpu}
        write_json_atomic(raw_path, state)
    print(f"wrote {md_path}, {png_path} and {lm_path}")

if __name__ == "__main__":
    main()
