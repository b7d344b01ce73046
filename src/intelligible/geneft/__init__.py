"""GenEFT (Baek, Liu, Tegmark 2024): when does a network generalise?

Statics: the information a relation holds (`description_bits`, b = log2(n!/|Aut|)), the data
fraction it needs (`critical_fraction`, `accuracy_bound`), and the exact bound of what a sample
determines under the relation's axioms (`monte_carlo_bound`). Dynamics: many small encoder-decoder
networks trained at once (`train_batched`), the learning-rate phase diagram (`phases`), and the
interacting-repon theory (`collision_probability`, `simulate`, `conserved_quantity`).
"""

from intelligible.geneft.experiment import (
    BoundConfig,
    GoldilocksConfig,
    PhasesConfig,
    SweepConfig,
    bound,
    goldilocks,
    phases,
    reproduce,
    sweep,
)
from intelligible.geneft.model import ModelSpec, SingleModel, ideal_decoder_for
from intelligible.geneft.relations import (
    Relation,
    bipartite_relation,
    get_relation,
    greater_relation,
    load_relation_file,
    matrix_relation,
    mod_relation,
)
from intelligible.geneft.repon import (
    cluster_factor,
    collision_probability,
    conserved_quantity,
    monte_carlo_collisions,
    simulate,
)
from intelligible.geneft.statics import (
    accuracy_bound,
    automorphism_count,
    balls_in_buckets,
    closure,
    critical_fraction,
    description_bits,
    exact_bound,
    monte_carlo_bound,
)
from intelligible.geneft.train import RunSpec, train_batched, train_single

__all__ = [
    "BoundConfig", "GoldilocksConfig", "ModelSpec", "PhasesConfig", "Relation", "RunSpec", "SingleModel",
    "SweepConfig", "accuracy_bound", "automorphism_count", "balls_in_buckets", "bipartite_relation", "bound",
    "closure", "cluster_factor", "collision_probability", "conserved_quantity", "critical_fraction",
    "description_bits", "exact_bound", "get_relation", "goldilocks", "greater_relation", "ideal_decoder_for",
    "load_relation_file", "matrix_relation", "mod_relation", "monte_carlo_bound", "monte_carlo_collisions",
    "phases", "reproduce", "simulate", "sweep", "train_batched", "train_single",
]  # fmt: skip
