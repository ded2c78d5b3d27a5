"""Training one model: the proxy trainer every search trial, baseline and final job runs
(`train_proxy`), measured inference latency (`measure_latency`; `measure` on a latency budget's
target, with its `fingerprint`), latency tables that predict it from parts measured once on the target
(`LatencyTable`), and `train_final`, the final training of one named model from scratch into a model
folder. Privately, the one trial body that search trials, baseline and final jobs and supernet
candidates all run (`_trial`) and the one weights serialiser (`_weights`).
"""

from shufflesearch.train._final import train_final
from shufflesearch.train._latency import Latency, Measurement, fingerprint, latency_device, measure, measure_latency
from shufflesearch.train._latency_table import LatencyTable
from shufflesearch.train._proxy import ProxyResult, train_proxy

__all__ = ["Latency", "LatencyTable", "Measurement", "ProxyResult", "fingerprint", "latency_device", "measure",
           "measure_latency", "train_final", "train_proxy"]
