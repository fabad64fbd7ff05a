import torch

from tspg.train import (
    adversarial_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    norm_loss,
    target_distance_loss,
)


def test_adversarial_loss_is_cw_margin_on_logits():
    logits = torch.tensor([[1.0, 3.0, 0.0], [5.0, 1.0, 2.0]])
    # target 1: sample 0 already target by margin 2 -> max(1 - 3, 0) = 0 ; sample 1: max(5, 2) - 1 = 4
    assert torch.isclose(adversarial_loss(logits, 1, kappa=0.0), torch.tensor(2.0))
    # with kappa the already-fooled sample is rewarded down to -kappa
    assert torch.isclose(adversarial_loss(logits, 1, kappa=5.0), torch.tensor((-2.0 + 4.0) / 2))
    assert torch.isclose(adversarial_loss(logits, 1, kappa=1.0), torch.tensor((-1.0 + 4.0) / 2))


def test_losses_do_not_depend_on_batch_size():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(7, 4, generator=g)
    pert = torch.randn(7, 11, generator=g)
    x_adv, r = torch.rand(7, 11, generator=g), torch.rand(7, 11, generator=g)
    d = torch.randn(7, generator=g)
    twice = lambda t: torch.cat([t, t])  # noqa: E731
    assert torch.isclose(adversarial_loss(logits, 2), adversarial_loss(twice(logits), 2))
    assert torch.isclose(norm_loss(pert), norm_loss(twice(pert)))
    assert torch.isclose(target_distance_loss(x_adv, r), target_distance_loss(twice(x_adv), twice(r)))
    assert torch.isclose(gan_generator_loss(d), gan_generator_loss(twice(d)))


def test_norm_loss_is_mean_of_per_sample_l2_norms():
    p = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    assert torch.isclose(norm_loss(p), torch.tensor(2.5))
    assert norm_loss(torch.zeros(5, 3)) == 0


def test_target_distance_is_mean_absolute_difference():
    x = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    r = torch.tensor([[1.0, 1.0], [0.5, 0.0]])
    assert torch.isclose(target_distance_loss(x, r), torch.tensor((0.5 + 0.25) / 2))
    assert target_distance_loss(x, x) == 0


def test_least_squares_gan_losses():
    ones, zeros = torch.ones(4), torch.zeros(4)
    assert gan_discriminator_loss(ones, zeros) == 0  # perfect discriminator
    assert gan_generator_loss(ones) == 0  # perfectly fooled discriminator
    assert torch.isclose(gan_discriminator_loss(zeros, ones), torch.tensor(1.0))
