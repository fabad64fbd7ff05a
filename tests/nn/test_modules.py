import torch
from torch import nn

from tspg.nn import Classifier, Discriminator, Generator, perturb


def _linear_sizes(module):
    return [m.out_features for m in module.modules() if isinstance(m, nn.Linear)]


def test_architectures_follow_the_paper():
    assert _linear_sizes(Classifier(50, 4)) == [1024, 512, 128, 4]
    # generator: down 512-256-128, 3 residual blocks of two 128 layers, up 256-512, output of the input size
    assert _linear_sizes(Generator(50)) == [512, 256, 128] + [128] * 6 + [256, 512, 50]
    assert _linear_sizes(Discriminator(50)) == [512, 256, 128, 1]
    assert isinstance(Generator(50).net[-1], nn.Tanh)
    assert sum(isinstance(m, nn.LeakyReLU) and m.negative_slope == 0.2 for m in Discriminator(50).modules()) == 3


def test_generator_perturbation_is_bounded_and_x_adv_clipped():
    torch.manual_seed(0)
    g = Generator(30)
    x = torch.rand(16, 30)
    with torch.no_grad():
        x_adv, p = perturb(g, x)
        assert p.shape == (16, 30) and float(p.abs().max()) <= 1.0
        assert float(x_adv.min()) >= 0.0 and float(x_adv.max()) <= 1.0
        # a held-out value outside [0, 1] is never moved by the clip, only by G
        wide = torch.tensor([[-0.5, 1.7] * 15])
        zero = Generator(30).eval()
        for param in zero.parameters():
            param.zero_()
        x_wide, _ = perturb(zero, wide)
        assert torch.equal(x_wide, wide)
    assert Discriminator(30)(x).shape == (16,)
    assert Classifier(30, 5)(x).shape == (16, 5)
