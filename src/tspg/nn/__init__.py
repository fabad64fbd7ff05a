"""Torch modules of TSPG: classifier f, generator G, discriminator D."""

from tspg.nn._modules import Classifier, Discriminator, Generator, ResidualBlock, TransportPrior, perturb, seeded

__all__ = ["Classifier", "Discriminator", "Generator", "ResidualBlock", "TransportPrior", "perturb", "seeded"]
