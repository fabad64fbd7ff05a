"""Torch modules of TSPG: classifier f, generator G (per target, or conditional on the target), discriminator D."""

from tspg.nn._modules import (
    MARGINAL_LEVELS,
    Classifier,
    ConditionalGenerator,
    ConditionalPrior,
    Discriminator,
    Generator,
    ResidualBlock,
    TargetView,
    TransportPrior,
    perturb,
    quantile_map,
    seeded,
)

__all__ = ["MARGINAL_LEVELS", "Classifier", "ConditionalGenerator", "ConditionalPrior", "Discriminator", "Generator",
           "ResidualBlock", "TargetView", "TransportPrior", "perturb", "quantile_map", "seeded"]
