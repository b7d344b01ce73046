"""Sparse autoencoders on LM activations: ReLU and TopK baselines and Switch SAEs with real expert dispatch."""

from intelligible.sae.models import Code, ReLUSAE, SparseAutoencoder, SwitchSAE, TopKSAE

__all__ = ["Code", "ReLUSAE", "SparseAutoencoder", "SwitchSAE", "TopKSAE"]
