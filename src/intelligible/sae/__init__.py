"""Sparse autoencoders on LM activations: ReLU and TopK baselines and Switch SAEs with real expert dispatch."""

from intelligible.lm.saes.io import load_sae, load_saelens, save_sae, save_saelens
from intelligible.lm.saes.models import Code, ReLUSAE, SparseAutoencoder, SwitchSAE, TopKSAE
from intelligible.sae.activations import Activations, collect_activations
from intelligible.sae.metrics import duplicate_fraction, evaluate, spliced_losses
from intelligible.sae.train import TensorBatches, TrainConfig, train

__all__ = [
    "Activations",
    "Code",
    "ReLUSAE",
    "SparseAutoencoder",
    "SwitchSAE",
    "TensorBatches",
    "TopKSAE",
    "TrainConfig",
    "collect_activations",
    "duplicate_fraction",
    "evaluate",
    "load_sae",
    "load_saelens",
    "save_sae",
    "save_saelens",
    "spliced_losses",
    "train",
]
