"""What a supernet checkpoint is checked against before it is reused, resumed or loaded (the space it was
built from, the data it was trained on, its settings, its end), a missing one, and the supernet
evaluator's one-line errors: `train_fn` with it, and a GPU share on a Ray without GPUs, which used to
leave the scoring actors waiting forever for a GPU."""

from __future__ import annotations

import dataclasses
import shutil
import threading

import pytest
import yaml
from helpers import ROOT, tiny_space

import shufflesearch
from shufflesearch.data import load_data
from shufflesearch.errors import ShuffleSearchError
from shufflesearch.space._configs import SupernetConfig
from shufflesearch.space._space import SearchSpace
from shufflesearch.supernet._score import load_supernet, read_supernet
from shufflesearch.supernet._train import CHECKPOINT, read_state, train_supernet

DEMO = ROOT / "search_spaces" / "demo.yaml"
CFG = SupernetConfig(epochs=1, checkpoint_every=5, learned_loss=None)  # one epoch: too short to learn


def _space(**changes) -> SearchSpace:
    """The demo space with `changes` to its YAML sections (dicts merged one level deep)."""
    data = yaml.safe_load(DEMO.read_text())
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return SearchSpace.from_dict(data, "changed.yaml")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The demo space's supernet trained for one epoch (17 steps) on its data: (run folder, space, data)."""
    space, run_dir = SearchSpace.from_yaml(DEMO), tmp_path_factory.mktemp("trained")
    data = load_data(space.proxy.data, "search")
    train_supernet(space, run_dir, CFG, data=data, progress=None)
    return run_dir, space, data


def _copy(trained, tmp_path):
    run_dir, *_ = trained
    shutil.copytree(run_dir / "supernet", tmp_path / "supernet")
    return tmp_path


@pytest.mark.parametrize("changes, differs", [
    ({"stages": [{"base_channels": 116, "repeats": {"choices": [1, 2, 3]}, "grouped_first_conv": False},
                 {"base_channels": 232, "repeats": {"choices": [1, 2]}},
                 {"base_channels": 464, "repeats": {"choices": [1, 2]}}]}, "the search space"),
    ({"budget": {"mflops": 25}}, "the search space"),  # the same shapes: paths sampled within another budget
])
def test_a_finished_supernet_of_another_space_is_refused_not_reused(trained, tmp_path, changes, differs):
    run_dir = _copy(trained, tmp_path)
    before = (run_dir / "supernet" / CHECKPOINT).read_bytes()
    with pytest.raises(ShuffleSearchError, match=rf"supernet\.safetensors: trained with other settings \({differs} "
                                                 r"differ\); restore them or delete the supernet folder"):
        train_supernet(_space(**changes), run_dir, CFG, progress=None)
    assert (run_dir / "supernet" / CHECKPOINT).read_bytes() == before  # nothing trained, nothing written


def test_a_finished_supernet_of_other_data_is_refused_not_reused(trained, tmp_path):
    run_dir, space, _ = trained
    run_dir = _copy(trained, tmp_path)
    fewer = dataclasses.replace(space.proxy.data, subset_per_class=50)
    other = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, data=fewer))
    with pytest.raises(ShuffleSearchError, match=r"trained with other settings \(the data's train_images, the data's "
                                                 r"labels differ\)"):
        train_supernet(other, run_dir, CFG, progress=None)
    resplit = dataclasses.replace(space.proxy.data, split_seed=1)
    other = dataclasses.replace(space, proxy=dataclasses.replace(space.proxy, data=resplit))
    with pytest.raises(ShuffleSearchError, match=r"\(the data's split_seed, the data's labels differ\)"):
        train_supernet(other, run_dir, CFG, progress=None)


def test_the_same_space_and_data_reuse_it_and_record_what_it_was_trained_on(trained):
    run_dir, space, data = trained
    state = read_state(run_dir)
    assert train_supernet(space, run_dir, CFG, data=data, progress=None) == state  # reused, not trained again
    assert state["done"] and state["resumed_from"] == [] and state["device"] == "cpu"
    from shufflesearch.supernet._train import read_metadata

    meta = read_metadata(run_dir / "supernet" / CHECKPOINT)
    assert {"settings", "space", "data", "step", "total_steps"} <= meta.keys()
    assert '"split_seed": 0' in meta["data"] and '"train_images": ' in meta["data"]


def test_load_supernet_checks_the_checkpoint(trained, tmp_path):
    run_dir, space, data = trained
    net = load_supernet(space, run_dir, data, CFG)
    assert not net.training
    with pytest.raises(ShuffleSearchError, match=r"supernet\.safetensors: trained with other settings \(the search "
                                                 r"space differ\); it is not this run's supernet"):
        load_supernet(space.with_budget(25), run_dir, data, CFG)
    with pytest.raises(ShuffleSearchError, match=r"trained with other settings \(lr differ\)"):
        read_supernet(space, run_dir, data, dataclasses.replace(CFG, lr=0.1))
    with pytest.raises(ShuffleSearchError, match=r"trained with other settings \(seed differ\)"):
        read_supernet(space, run_dir, data, CFG, seed=1)
    # workers, threads, storage, bn_batches and the learned_loss check are not what it was trained on
    read_supernet(space, run_dir, data, dataclasses.replace(CFG, workers=2, threads=2, bn_batches=2, storage="/x",
                                                            learned_loss=0.5))


def test_an_unfinished_checkpoint_is_not_loaded(tmp_path):
    space = SearchSpace.from_yaml(DEMO)
    data = load_data(space.proxy.data, "search")
    cfg = SupernetConfig(epochs=2, checkpoint_every=5, learned_loss=None)
    lines = []

    class Stop(Exception):
        pass

    def stop_at_first_checkpoint(line):
        lines.append(line)
        raise Stop  # as a kill would, right after the first checkpoint

    with pytest.raises(Stop):
        train_supernet(space, tmp_path, cfg, data=data, progress=stop_at_first_checkpoint)
    assert read_state(tmp_path)["step"] == 5
    with pytest.raises(ShuffleSearchError, match=r"supernet\.safetensors: the supernet's training stopped at step 5 "
                                                 r"of 34; finish it by running the search again \(--resume\)"):
        load_supernet(space, tmp_path, data, cfg)


def test_a_missing_supernet_folder_is_one_line_naming_it_and_what_to_do(tmp_path):
    space = SearchSpace.from_yaml(DEMO)
    data = load_data(space.proxy.data, "search")
    run_dir = tmp_path / "runs" / "gone"
    run_dir.mkdir(parents=True)
    with pytest.raises(ShuffleSearchError) as e:
        load_supernet(space, run_dir, data)
    assert str(e.value) == (
        f"{run_dir / 'supernet'}: no trained supernet there (supernet.safetensors missing, deleted?), from which a "
        "supernet search's candidates inherit their weights; restore it, or train it again with the run's settings: "
        f"shufflesearch search {run_dir / 'space.yaml'} --name gone --runs-dir {run_dir.parent} --resume")


def test_train_fn_with_the_supernet_evaluator_is_refused(tmp_path):
    space = tiny_space(tmp_path)

    def train_fn(arch, data, cfg, report):  # never called
        raise AssertionError

    for kwargs in ({"evaluator": "supernet"}, {}):
        if not kwargs:  # the space file's evaluator
            data = yaml.safe_load(space.read_text())
            space.write_text(yaml.safe_dump({**data, "evaluator": "supernet"}))
        with pytest.raises(ShuffleSearchError, match=r"^train_fn: replaces the proxy evaluator's trainer, but the "
                                                     r"evaluator is supernet \((given|.*tiny\.yaml's evaluator)\); "
                                                     r"search a new run with evaluator='proxy'"):
            shufflesearch.search(space, name="fn", runs_dir=tmp_path / "runs", train_fn=train_fn, progress=None, **kwargs)
        assert not (tmp_path / "runs").exists()  # nothing written


def test_storage_is_resolved_and_recorded(tmp_path, monkeypatch):
    from shufflesearch.supernet._score import resolve_evaluator

    space = SearchSpace.from_yaml(DEMO)
    monkeypatch.chdir(tmp_path)
    _, cfg = resolve_evaluator(space, None, "supernet", 2, "shared/ckpt")
    assert cfg.storage == str(tmp_path / "shared" / "ckpt") and cfg.workers == 2  # absolute: workers have other cwds
    _, cfg = resolve_evaluator(space, None, "supernet", None, "s3://bucket/x")
    assert cfg.storage == "s3://bucket/x"
    previous = {"evaluator": "supernet", "supernet": cfg.to_dict()}
    assert resolve_evaluator(space, previous, None)[1].storage == "s3://bucket/x"  # a resumed run keeps its own
    with pytest.raises(ShuffleSearchError, match=r"^--storage: supernet\.storage = ' ': must be a path or URI"):
        resolve_evaluator(space, None, "supernet", None, " ")


def test_a_gpu_share_on_a_ray_without_gpus_is_one_line_not_a_wait(tmp_path, ray_local):
    import ray

    assert ray.cluster_resources().get("GPU", 0) == 0
    space = tiny_space(tmp_path, sampler="random")  # the supernet evaluator takes random or evolution
    outcome = []

    def run():
        try:
            shufflesearch.search(space, name="gpu", evaluator="supernet", gpus_per_trial=1, runs_dir=tmp_path / "runs",
                                 progress=None)
            outcome.append("finished")
        except ShuffleSearchError as e:
            outcome.append(e)

    searching = threading.Thread(target=run, daemon=True)  # the code before waited here for ever
    searching.start()
    searching.join(120)
    assert outcome and str(outcome[0]) == "--gpus-per-trial 1: the Ray cluster has 0 GPU(s)"
    assert not (tmp_path / "runs" / "gpu" / "supernet").exists()  # nothing trained
    # the supernet's own training too (one worker: under Ray Train, which would wait for the GPU)
    with pytest.raises(ShuffleSearchError, match=r"^--gpus-per-trial 1: the Ray cluster has 0 GPU\(s\)$"):
        train_supernet(SearchSpace.from_yaml(DEMO), tmp_path / "t", CFG, gpus=1, progress=None)
    with pytest.raises(ShuffleSearchError, match=r"^--gpus-per-trial 0.5 with supernet.workers = 2: each "):
        train_supernet(SearchSpace.from_yaml(DEMO), tmp_path / "t", dataclasses.replace(CFG, workers=2), gpus=0.5,
                       progress=None)
