"""The TSPG generator and discriminator losses. Every term is a batch mean of a per-sample quantity."""

from __future__ import annotations

import torch


def adversarial_loss(logits: torch.Tensor, target: int, kappa: float = 0.0) -> torch.Tensor:
    """Carlini-Wagner targeted loss on logits: mean of ``max(max_{i!=t} z_i - z_t, -kappa)``."""
    z_t = logits[:, target]
    others = logits.clone()
    others[:, target] = float("-inf")
    return torch.clamp(others.max(dim=1).values - z_t, min=-kappa).mean()


def norm_loss(perturbation: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each sample's L2 norm of G(x)."""
    return perturbation.norm(dim=1).mean()


def target_distance_loss(x_adv: torch.Tensor, r_target: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of each sample's mean absolute difference to a draw from the target class."""
    return (x_adv - r_target).abs().mean(dim=1).mean()


def gan_generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the generator: mean of ``(D(x_adv) - 1)^2``."""
    return ((d_fake - 1.0) ** 2).mean()


def gan_discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Least-squares GAN loss of the discriminator: ``((D(x) - 1)^2 + D(x_adv)^2) / 2``, batch means."""
    return 0.5 * (((d_real - 1.0) ** 2).mean() + (d_fake**2).mean())
