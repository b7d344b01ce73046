"""Sparse autoencoders below the studies: the ReLU, TopK and Switch models (encode/decode) and their files.

Any study that reads an SAE imports it from here (the `sae` study trains them and re-exports these names):
`load_sae` reads what `intelligible sae train` writes (kind "sae"), `load_saelens` a SAELens folder.
"""

from intelligible.lm.saes.io import load_sae, load_saelens, save_sae, save_saelens
from intelligible.lm.saes.models import Code, ReLUSAE, SparseAutoencoder, SwitchSAE, TopKSAE

__all__ = [
    "Code",
    "ReLUSAE",
    "SparseAutoencoder",
    "SwitchSAE",
    "TopKSAE",
    "load_sae",
    "load_saelens",
    "save_sae",
    "save_saelens",
]
