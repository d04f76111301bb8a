"""Models: generators (GNN2GNN and baselines), discriminator and valuer."""

from pipeline.models.critics import Discriminator, GraphCritic, Valuer
from pipeline.models.generators import (
    ErdosRenyiGenerator,
    Generator,
    Graphs,
    MolGANGenerator,
    RNNGenerator,
    refine,
)

__all__ = [
    "Discriminator",
    "ErdosRenyiGenerator",
    "Generator",
    "GraphCritic",
    "Graphs",
    "MolGANGenerator",
    "RNNGenerator",
    "Valuer",
    "refine",
]
