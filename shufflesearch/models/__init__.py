"""ShuffleNet v1/v2 as timm models: the channel shuffle and units (`_layers`), the network with timm's
full contract (`ShuffleNet`, `build`), the timm registry of the zoo, the generic `shufflesearch_net`
and exported winners (`_registry`), and the model folders exports write (`_folder`).
"""

from shufflesearch.genome._catalog import get_arch, list_archs, resolve_arch
from shufflesearch.models._folder import export_onnx, model_name, write_model_dir
from shufflesearch.models._layers import channel_shuffle
from shufflesearch.models._network import ShuffleNet, build
from shufflesearch.models._registry import register_models, unregister_model

__all__ = [
    "ShuffleNet", "build", "channel_shuffle", "export_onnx", "get_arch", "list_archs", "model_name",
    "register_models", "resolve_arch", "unregister_model", "write_model_dir",
]
