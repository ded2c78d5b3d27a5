"""Shared pytest fixtures."""

import pytest
import torch


@pytest.fixture
def one_thread():
    """One intra-op thread: tiny-input model tests run faster without OpenMP barriers (and much faster
    when other processes share the 2 cores)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the in-process searches of a module (search() reuses a running Ray)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
