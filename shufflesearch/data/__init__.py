"""Datasets in memory for proxy, supernet and final training: the three splits (train,
search-validation carved from train, test), decoding and the on-disk cache of resized images.
`shufflesearch.data._data`'s docstring lists the dataset specs.
"""

from shufflesearch.data._data import ProxyData, augment_batch, load_data

__all__ = ["ProxyData", "augment_batch", "load_data"]
