"""Shared pytest fixtures, and the isolation every test runs in.

Each test module (its module-scoped fixtures included) and each test runs in a new empty working
directory, without SHUFFLESEARCH_MODELS and with a data cache of its own (SHUFFLESEARCH_CACHE);
afterwards the models it registered are forgotten and torch's thread count is put back. Models
`import shufflesearch` found for the user (a `runs/` in the checkout, say after the README's main job,
or SHUFFLESEARCH_MODELS) are forgotten for the whole session: a test that needs registered found
models exports or registers its own. Helper functions shared by test
modules live in helpers.py and timm_contract.py; no test module imports another.
"""

import contextlib
from pathlib import Path
from typing import Iterator

import pytest
import torch

from shufflesearch.genome import _catalog as catalog
from shufflesearch.models import _registry as registry


@contextlib.contextmanager
def _isolated(cwd: Path) -> Iterator[None]:
    names, threads = set(catalog.ARCHS), torch.get_num_threads()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(cwd)
        patch.delenv(catalog.MODELS_ENV, raising=False)
        patch.setenv("SHUFFLESEARCH_CACHE", str(cwd / "data-cache"))  # never the user's cache
        try:
            yield
        finally:
            for name in catalog.ARCHS.keys() - names:
                registry.unregister_model(name)
            torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def _without_the_users_models() -> None:
    for name in catalog.FOUND.keys() | catalog.CONFLICTS.keys():
        registry.unregister_model(name)


@pytest.fixture(scope="session", autouse=True)
def _ray_without_tokens() -> Iterator[None]:
    """Every Ray the tests start or join runs without token authentication, as the nodes of the test
    cluster (tests/cluster.py) do. A local ray.init() in token mode (Ray 2.60's default) leaves this
    process's token state on for its later drivers; a search on the test cluster after one would never
    start its trials (their actors are cancelled before they run)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_AUTH_MODE", "disabled")
        yield


@pytest.fixture(scope="module", autouse=True)
def _isolated_module(_without_the_users_models, tmp_path_factory) -> Iterator[None]:
    with _isolated(tmp_path_factory.mktemp("cwd")):
        yield


@pytest.fixture(autouse=True)
def _isolated_test(_isolated_module, tmp_path_factory) -> Iterator[None]:
    with _isolated(tmp_path_factory.mktemp("cwd")):
        yield


@pytest.fixture
def one_thread() -> None:
    """One intra-op thread (each test's isolation restores the count): tiny-input model tests run faster
    without OpenMP barriers (and much faster when other processes share the 2 cores)."""
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the in-process searches of a module (search() reuses a running Ray)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
