"""Torch modules of TSPG: classifier f, generator G (per target, or conditional on the target), discriminator D."""

from tspg.nn._modules import (
    Classifier,
    ConditionalGenerator,
    ConditionalPrior,
    Discriminator,
    Generator,
    ResidualBlock,
    TargetView,
    TransportPrior,
    perturb,
    seeded,
)

__all__ = ["Classifier", "ConditionalGenerator", "ConditionalPrior", "Discriminator", "Generator", "ResidualBlock",
           "TargetView", "TransportPrior", "perturb", "seeded"]
