"""The adversarial training plan: one discriminator and one generator update per mini-batch step."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import torch

from tspg.nn import Classifier, Discriminator, Generator, perturb
from tspg.train._classifier import predict_logits
from tspg.train._config import GeneratorConfig, resolved_w_norm
from tspg.train._losses import (
    adversarial_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    norm_loss,
    target_distance_loss,
)
from tspg.train._progress import epoch_bar
from tspg.train._target import TargetSampler

log = logging.getLogger(__name__)


@torch.no_grad()
def generate(generator: Generator, x: np.ndarray | torch.Tensor, batch_size: int = 4096,
             device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """Perturb every row of ``x`` (scaled units) with the generator in eval mode.

    Returns
    -------
    ``x_adv`` and ``G(x)`` as float32 arrays.
    """
    was_training = generator.training
    generator.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    adv, pert = [], []
    for i in range(0, len(xt), batch_size):
        a, g = perturb(generator, xt[i:i + batch_size].to(device))
        adv.append(a.float().cpu())
        pert.append(g.float().cpu())
    generator.train(was_training)
    n = xt.shape[1]
    return (torch.cat(adv).numpy() if adv else np.empty((0, n), np.float32),
            torch.cat(pert).numpy() if pert else np.empty((0, n), np.float32))


def perturbation_accuracy(classifier: Classifier, x: np.ndarray, x_adv: np.ndarray, target: int,
                          device: str | torch.device = "cpu") -> tuple[float, float, int]:
    """Share of samples called ``target`` after perturbation.

    Returns
    -------
    The share among samples not already called the target before perturbation (NaN if none), the share among
    all samples (NaN if none), and the number not already called the target.
    """
    before = predict_logits(classifier, x, device=device).argmax(1).numpy()
    after = predict_logits(classifier, x_adv, device=device).argmax(1).numpy()
    hit = after == target
    fresh = before != target
    acc = float(hit[fresh].mean()) if fresh.any() else float("nan")
    acc_all = float(hit.mean()) if len(hit) else float("nan")
    return acc, acc_all, int(fresh.sum())


def checkpoint_score(row: dict) -> tuple[float, float, float]:
    """Rank of an epoch's generator on the validation part (higher is better).

    First the share of validation samples f calls the target (to 2 decimals); then their mean margin
    ``min(z_t - max_{i!=t} z_i, kappa)`` in whole logit units (a generator whose samples are fooled with margin
    generalises better than one that barely crosses the boundary, but a hundredth of a logit must not outweigh
    realism); then the mean absolute distance to the target class's training mean (closer is more realistic; the
    mean rather than random target draws, so that the score does not move with the draw).
    """
    return (round(row["val_accuracy"], 2), float(round(row["val_margin"])), -row["val_dist"])


def fit_generator(
    classifier: Classifier,
    x_train: np.ndarray,
    x_target: np.ndarray,
    target: int,
    x_val: np.ndarray,
    config: GeneratorConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "generator",
) -> tuple[Generator, list[dict]]:
    """Train a generator that perturbs any sample towards class ``target`` (TSPG, paper section 2.2).

    Each step draws a mini-batch x, computes ``G(x)`` once and ``x_adv = clip(x + G(x), 0, 1)``, updates D on
    (x, x_adv) with the least-squares GAN loss, then updates G on
    ``w_gan L_GAN + w_adv L_adv + w_norm L_norm + w_td L_td``. After each epoch the generator is scored on the
    validation part (see :func:`checkpoint_score`); the best-scoring weights are kept and training stops after
    ``patience`` epochs without improvement.

    Parameters
    ----------
    classifier
        The trained classifier f; it is frozen.
    x_train
        Scaled training samples of every class.
    x_target
        Scaled training samples of the target class (for the target distribution).
    target
        The target's class index.
    x_val
        Scaled validation samples (for checkpoint selection); when empty, ``x_train`` is scored instead.
    config
        Optimiser settings and loss weights.
    seed
        Seeds weights, batch order and target draws.
    device
        Torch device.
    progress
        Show a progress bar.
    desc
        Progress bar label.

    Returns
    -------
    The trained generator (eval mode) and one history row per epoch.
    """
    classifier = classifier.to(device).eval()
    for p in classifier.parameters():
        p.requires_grad_(False)
    try:
        return _train(classifier, x_train, x_target, target, x_val, config, seed, device, progress, desc)
    finally:
        for p in classifier.parameters():
            p.requires_grad_(True)


def _train(classifier: Classifier, x_train: np.ndarray, x_target: np.ndarray, target: int, x_val: np.ndarray,
           config: GeneratorConfig, seed: int, device: str | torch.device, progress: bool,
           desc: str) -> tuple[Generator, list[dict]]:
    n_genes = x_train.shape[1]
    torch.manual_seed(seed)
    gen = torch.Generator(device="cpu").manual_seed(seed)
    dev_gen = torch.Generator(device=device).manual_seed(seed + 1)
    w_norm = resolved_w_norm(config, n_genes)
    generator = Generator(n_genes).to(device)
    discriminator = Discriminator(n_genes).to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=config.lr_generator, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=config.lr_discriminator, fused=True)
    sampler = TargetSampler(x_target, config.target_cov, rank=config.target_rank,
                            shrinkage=config.target_shrinkage, device=device)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    if len(x_val) == 0:
        log.warning("no validation samples: scoring checkpoints on the training part")
        x_val = x_train
    val_before = predict_logits(classifier, x_val, device=device).argmax(1).numpy()
    x_val_fresh = x_val[val_before != target] if (val_before != target).any() else x_val
    xv = torch.as_tensor(x_val_fresh, dtype=torch.float32, device=device)

    batch = min(config.batch_size, len(xt))
    steps = max(math.ceil(len(xt) / batch), config.min_steps_per_epoch)
    best_score, best_state, best_epoch, stale = None, None, 0, 0
    history: list[dict] = []
    bar = epoch_bar(config.epochs, desc, progress)
    order = torch.empty(0, dtype=torch.long)
    pos = 0
    for epoch in range(1, config.epochs + 1):
        generator.train()
        discriminator.train()
        sums = dict.fromkeys(("d_loss", "g_loss", "gan", "adv", "norm", "td"), 0.0)
        for _ in range(steps):
            if pos + batch > len(order):
                order = torch.randperm(len(xt), generator=gen)
                pos = 0
            idx = order[pos:pos + batch].to(device)
            pos += batch
            x = xt[idx]
            x_adv, g = perturb(generator, x)

            d_loss = gan_discriminator_loss(discriminator(x), discriminator(x_adv.detach()))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()

            r = sampler.sample(len(x), generator=dev_gen)
            l_gan = gan_generator_loss(discriminator(x_adv))
            l_adv = adversarial_loss(classifier(x_adv), target, config.kappa)
            l_norm = norm_loss(g)
            l_td = target_distance_loss(x_adv, r)
            g_loss = config.w_gan * l_gan + config.w_adv * l_adv + w_norm * l_norm + config.w_td * l_td
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            for k, v in (("d_loss", d_loss), ("g_loss", g_loss), ("gan", l_gan), ("adv", l_adv),
                         ("norm", l_norm), ("td", l_td)):
                sums[k] += float(v.detach())
        row = {"epoch": epoch, **{k: v / steps for k, v in sums.items()}}

        generator.eval()
        with torch.no_grad():
            v_adv, _ = perturb(generator, xv)
            v_logits = classifier(v_adv)
            v_hit = (v_logits.argmax(1) == target).float().mean()
            v_margin = -adversarial_loss(v_logits, target, config.kappa)
            v_dist = (v_adv - sampler.mu).abs().mean()
        row["val_accuracy"] = float(v_hit)
        row["val_margin"] = float(v_margin)
        row["val_dist"] = float(v_dist)
        score = checkpoint_score(row)
        if best_score is None or score > best_score:
            best_score, best_epoch, stale = score, epoch, 0
            best_state = copy.deepcopy(generator.state_dict())
        else:
            stale += 1
        history.append(row)
        bar.update(1)
        bar.set_postfix(adv=f"{row['adv']:.3g}", td=f"{row['td']:.3g}", val_acc=f"{row['val_accuracy']:.3f}")
        if config.patience and stale >= config.patience:
            break
    bar.close()
    generator.load_state_dict(best_state)
    generator.eval()
    log.info("%s: best epoch %d of %d (validation perturbation accuracy %.3f)", desc, best_epoch, len(history),
             best_score[0])
    return generator, history
