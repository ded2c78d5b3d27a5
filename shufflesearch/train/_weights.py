"""The one weights serialiser: a state dict (or any named tensors) as the bytes of a safetensors file.

Every weight file shufflesearch writes goes through here: a search trial's weights, a final or
baseline retraining's, `train_final`'s model, a supernet path's inherited weights and the supernet's
checkpoint. safetensors refuses tensors that do not own a contiguous block (channels_last weights,
views), so each is made contiguous here, once, rather than by every writer.
"""

from __future__ import annotations

from typing import Mapping

import torch


def weights_bytes(tensors: Mapping[str, torch.Tensor], metadata: Mapping[str, str] | None = None) -> bytes:
    """`tensors` (e.g. `model.state_dict()`) as safetensors bytes, with string `metadata` in its header."""
    import safetensors.torch

    return safetensors.torch.save({k: v.detach().contiguous() for k, v in tensors.items()},
                                  metadata=dict(metadata) if metadata else None)
