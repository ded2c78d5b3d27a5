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
