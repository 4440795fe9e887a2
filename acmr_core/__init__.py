"""ACMR Lab's training core: Adversarial Cross-Modal Retrieval (Wang et al., ACM MM 2017) in plain PyTorch.

Read in this order: config → data → encoders → model → losses → training → metrics → retrieval → checkpoints.
"""
from .config import ACMRConfig, ConfigError
from .data import CrossModalDataset, DataError, available_datasets, load_dataset

__all__ = ["ACMRConfig", "ConfigError", "CrossModalDataset", "DataError", "available_datasets", "load_dataset"]
