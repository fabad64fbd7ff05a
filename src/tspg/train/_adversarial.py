"""The adversarial training plan: one discriminator and one generator update per mini-batch step."""

from __future__ import annotations

import contextlib
import logging
import math

import numpy as np
import torch

from tspg.data import share_called_target
from tspg.nn import Classifier, Discriminator, Generator, TargetView, perturb, seeded
from tspg.train._classifier import predict_logits
from tspg.train._config import GeneratorConfig, assigns_by_label, prior_marginals, prior_rules, resolved_w_norm
from tspg.train._frozen import FrozenClassifier, frozen_weights
from tspg.train._hardware import (
    autocast,
    fp32_products,
    resolve_device,
    resolve_precision,
    warn_if_slow_precision,
)
from tspg.train._losses import (
    MMD_BANDWIDTH_SCALES,
    EnergyGain,
    adversarial_loss,
    energy_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    group_mean_loss,
    individual_loss,
    median_bandwidth,
    mmd_loss,
    norm_loss,
    sinkhorn_loss,
    target_distance_loss,
    target_margins,
)
from tspg.train._optim import Adam
from tspg.train._prior import CrossFittedTransport, RowMoves, fit_transport_prior, partial_moves
from tspg.train._progress import epoch_bar
from tspg.train._target import TargetSampler

log = logging.getLogger(__name__)


@torch.inference_mode()
def generate(generator: Generator | TargetView, x: np.ndarray | torch.Tensor, batch_size: int = 1024,
             device: str | torch.device = "cpu", classes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Perturb every row of ``x`` (scaled units) with the generator in eval mode.

    Batches are written straight into the two result arrays (no list of pieces, no concatenation). Batches of
    1,024 keep the element-wise passes in cache: 10,000 x 4,386 took 1.18 s against 1.86 s with 4,096 (2 cores);
    the values were identical (both then in torch's default kernels). Full batches run their fp32 products in
    oneDNN's kernels (:func:`tspg.train._hardware.fp32_products`; one product shape, so one set of kernels), the
    last, partial batch in torch's default ones: on a Zen 5 CPU with two cores the generator's products of a full
    W2 batch took 32 ms against 56 ms. So a row's last bits can depend on whether it falls in a full batch (as
    torch's default kernels already gave a batch of one row other bits than the same row among others).

    ``classes``: with a transport prior (a per-target generator's, or a conditional generator's through its
    :class:`tspg.nn.TargetView`), each row's class index, whose map moves it (-1: the nearest centroid's); by
    default every row goes to the nearest centroid.

    Returns
    -------
    ``x_adv`` and ``G(x)`` as float32 arrays.
    """
    modes = [(m, m.training) for m in generator.modules()]  # a target view's conditional generator too
    generator.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    adv = np.empty(tuple(xt.shape), dtype=np.float32)
    pert = np.empty(tuple(xt.shape), dtype=np.float32)
    for i in range(0, len(xt), batch_size):
        part = xt[i:i + batch_size].to(device)
        c = None
        if classes is not None and generator.prior is not None:
            c = torch.as_tensor(np.asarray(classes[i:i + batch_size]), dtype=torch.long, device=device)
        with fp32_products() if len(part) == batch_size else contextlib.nullcontext():  # one product shape
            a, g = perturb(generator, part, classes=c)
        adv[i:i + len(a)] = a.float().cpu().numpy()
        pert[i:i + len(g)] = g.float().cpu().numpy()
    for m, mode in modes:
        m.train(mode)
    return adv, pert


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
    return share_called_target(before, after, target)


#: In the ``realism`` checkpoint rule, validation perturbation accuracies at or above this count as equal, so
#: that realism, not a last hundredth of accuracy, decides among the epochs that reach it.
ACCURACY_ENOUGH = 0.95
#: In the ``realism`` rule a validation sample counts as called the target only with at least this margin of the
#: target's logit over the next class's (``val_confident``): a sample just across f's boundary on the validation
#: part is one that held-out samples like it fall on either side of. With the transport prior and the plain share,
#: held-out success under f fell to 0.800 on leukemia (seed 0; 1.000 without the prior) and 0.954 on pbmc68k,
#: whose kept epoch was the first (``docs/method.md``, "The transport prior").
MARGIN_ENOUGH = 1.0
#: Validation samples of the target class needed to measure the checkpoint's energy distance against them.
MIN_VAL_REFERENCE = 3
#: Validation samples of the target class needed for their share of confident calls to cap the ``realism`` rule's
#: accuracy part (:func:`checkpoint_score`, ``val_target_confident``).
MIN_TARGET_FOR_CALL_CAP = 5
#: In the ``realism`` rule with a transport prior, a trained epoch replaces the prior alone (epoch 0) at an equal
#: accuracy part only where its validation energy distance is lower by at least this many standard errors
#: (``val_energy_z``, :func:`tspg.train.energy_gain_z`): smaller gains were noise of the few validation samples and
#: were worse than the prior alone on the held-out samples (``docs/method.md``, "The checkpoint's prior test").
#: An epoch whose validation energy distance is this many standard errors or more ABOVE the prior alone's is never
#: kept, whatever its calls.
PRIOR_GAIN_Z = 2.0
#: At most this many training rows make the out-of-fold check of the ``realism`` rule where the validation part
#: cannot score realism (:func:`out_of_fold_check`; a seeded sample of them where there are more).
MAX_OOF_CHECK = 1000
#: Rows of that check moved and scored at a time (its memory: a few of these rows x genes at once).
OOF_CHUNK = 256
#: With ``patience``, an epoch resets the count of epochs without improvement only when it betters the score
#: that last reset it by more than noise: a higher accuracy part, or (``realism`` rule) a validation energy
#: distance lower by more than this share. Smaller gains still replace the kept weights (the prior alone only by
#: a gain beyond its noise, :data:`PRIOR_GAIN_Z`); patience counts clear gains of the score, kept or not, except
#: those of an epoch clearly less realistic than the prior alone (:func:`_less_realistic`).
PATIENCE_MIN_GAIN = 0.01


def _clear_gain(score: tuple[float, ...], ref: tuple[float, ...] | None, rule: str) -> bool:
    """Whether ``score`` betters ``ref`` by enough to reset the patience (see :data:`PATIENCE_MIN_GAIN`)."""
    if ref is None or score[0] > ref[0]:
        return True
    if rule != "realism" or score[0] < ref[0]:
        return score > ref
    # realism: the second part is minus the energy distance
    return -score[1] < -ref[1] * (1.0 - PATIENCE_MIN_GAIN)


def checkpoint_score(row: dict, rule: str = "realism") -> tuple[float, ...]:
    """Rank of an epoch's generator on the validation part (higher is better).

    ``realism`` (the default rule): first the share of validation samples f calls the target with a margin of at
    least :data:`MARGIN_ENOUGH` logits (``val_confident``; the plain share for rows without it), to 2 decimals and
    capped at :data:`ACCURACY_ENOUGH`, or lower at the share of the target's own validation samples f calls the
    target with that margin (``val_target_confident``, where there are at least :data:`MIN_TARGET_FOR_CALL_CAP` of
    them): a transition into the target distribution is called the target as often as the real target samples are,
    so calls beyond theirs are not asked for; then the energy distance of the perturbed validation samples to the
    target class in the scaled gene space (``val_energy``, lower is better): its validation samples where it has at
    least :data:`MIN_VAL_REFERENCE`, else its training samples (see :func:`fit_generator`). A distribution distance
    rewards landing in the target distribution with its spread, where a distance to the target mean rewards collapse
    onto the mean. A row with ``val_energy_scored`` 0 (a generator with a transport prior and too few validation
    samples of the target) ranks by the first part alone, so that ties keep the earliest epoch (the prior alone);
    its share is then ``calls_confident`` where the row has it: the validation samples together with the training
    samples of other classes moved by their out-of-fold prior (:func:`out_of_fold_check`; a trained epoch's calls
    on them counted from :func:`oof_margin`), so that a prior that leaves new samples short is seen on more than a
    few.

    ``margin`` (tspg 0.1's rule): the share called the target (2 decimals, uncapped), then the mean margin
    ``min(z_t - max_{i!=t} z_i, kappa)`` in whole logits, then the mean absolute distance to the target class's
    training mean.
    """
    if rule == "margin":
        return (round(row["val_accuracy"], 2), float(round(row["val_margin"])), -row["val_dist"])
    energy = -row["val_energy"] if row.get("val_energy_scored", 1.0) else 0.0
    calls = row.get("calls_confident", math.nan)
    share = row.get("val_confident", row["val_accuracy"]) if math.isnan(calls) else calls
    enough = min(ACCURACY_ENOUGH, round(row.get("val_target_confident", 1.0), 2))
    return (min(round(share, 2), enough), energy)


def _replaces(row: dict, score: tuple[float, ...], best: tuple[float, ...] | None, prior_kept: bool,
              rule: str) -> bool:
    """Whether an epoch's row (``score``) replaces the kept weights (``best``; ``prior_kept``: they are epoch 0's).

    A higher score replaces them, except that in the ``realism`` rule the prior alone gives way at an equal
    accuracy part only to a validation energy lower by :data:`PRIOR_GAIN_Z` standard errors (``val_energy_z``),
    and an epoch whose validation energy is :data:`PRIOR_GAIN_Z` standard errors or more above the prior alone's
    never replaces them (a guard: calls are not bought with a clear loss of realism).
    """
    if best is None:
        return True
    if not score > best:
        return False
    if _less_realistic(row, rule):  # never kept, whatever its calls
        return False
    z = row.get("val_energy_z", math.nan)
    if rule == "realism" and not math.isnan(z) and prior_kept and score[0] == best[0]:
        return z <= -PRIOR_GAIN_Z
    return True


def _less_realistic(row: dict, rule: str) -> bool:
    """Whether an epoch is clearly less realistic than the prior alone (``val_energy_z`` >= :data:`PRIOR_GAIN_Z`).

    Such an epoch is never kept (:func:`_replaces`), and its score does not reset the patience either: more calls
    bought that way are not progress.
    """
    z = row.get("val_energy_z", math.nan)
    return rule == "realism" and not math.isnan(z) and z >= PRIOR_GAIN_Z


def kept_row(history: list[dict], rule: str = "realism") -> dict:
    """The row of ``history`` whose weights a generator fit keeps (its rule replayed on the rows).

    Parameters
    ----------
    history
        A fit's rows, epoch 0 (the prior alone) first where there is one.
    rule
        ``GeneratorConfig.checkpoint``.

    Returns
    -------
    The kept epoch's row: the best :func:`checkpoint_score`, earliest on ties, where the prior alone is replaced
    at an equal accuracy part only by a clear energy gain (:data:`PRIOR_GAIN_Z`) and no epoch clearly less
    realistic than the prior alone is kept.
    """
    best, best_score = None, None
    for row in history:
        score = checkpoint_score(row, rule)
        if row["epoch"] == 0 or _replaces(row, score, best_score, best is not None and best["epoch"] == 0, rule):
            best, best_score = row, score
    if best is None:
        raise ValueError("kept_row: the history has no rows")
    return best


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
    generator: Generator | None = None,
    discriminator: Discriminator | None = None,
    y_train: np.ndarray | None = None,
    x_target_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> tuple[Generator, list[dict]]:
    """Train a generator that perturbs any sample towards class ``target`` (TSPG, paper section 2.2).

    Each step draws a mini-batch x, computes ``G(x)`` once and ``x_adv = clip(x + G(x), 0, 1)``, updates D on
    (real, x_adv) with the least-squares GAN loss (real: a batch of target samples, or x with
    ``disc_real="all"``), then updates G on ``w_gan L_GAN + w_adv L_adv + w_norm L_norm + w_td L_td`` plus
    ``w_ind L_ind`` (and ``w_mean`` times the group-mean term when set). After each epoch the generator is scored on the
    validation part (see :func:`checkpoint_score`); the best-scoring weights are kept (:func:`kept_row`: the prior
    alone gives way at an equal accuracy part only to a clear energy gain) and training stops after
    ``patience`` epochs without a clear gain (:data:`PATIENCE_MIN_GAIN`).

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
    generator, discriminator
        The untrained networks to fit; by default (None) they are built by :func:`new_adversary` ``(n_genes,
        config, seed)``. Nothing here touches torch's global random state. With ``config.prior`` other than
        ``none`` and a generator without one, its transport prior is fitted here
        (:func:`tspg.train.fit_transport_prior` on ``x_train``).
    y_train
        Class index of each row of ``x_train``, for the prior's class maps; by default f's calls.
    x_target_val
        Scaled validation samples of the target class. With at least :data:`MIN_VAL_REFERENCE` of them the
        validation energy distance of the checkpoint rule is measured against them, not against the target's
        training samples: those are the samples L_td pulls towards and whose mean the prior moves to, so they
        favour an epoch that reproduces their own sampling noise over one that lands where new target samples
        lie (measured in ``docs/method.md``, "Shrinking the prior's mean shift"). With fewer, a generator with a
        transport prior is ranked on the confident-call share alone (the energy distance is still recorded, with
        ``val_energy_scored`` 0): G's training is kept only where it makes more validation samples confident
        calls; without a prior the training samples are the reference.
    y_val
        Class index of each row of ``x_val``: with ``config.prior_assign`` ``label`` (``auto``) the prior moves each
        validation sample by its own class's map, as it moves each training sample by its row of ``y_train`` (by
        default, and for validation rows without it, the nearest class centroid).

    Returns
    -------
    The trained generator (eval mode) and one history row per epoch.
    """
    config.validate()
    for name, labels, rows in (("y_train", y_train, x_train), ("y_val", y_val, x_val)):
        if labels is not None and len(labels) != len(rows):
            raise ValueError(f"{name} has {len(labels)} labels for {len(rows)} samples")
    device = resolve_device(device)
    classifier = classifier.to(device).eval()
    with frozen_weights(classifier):  # f is not trained here; its flags are put back after
        if generator is None or discriminator is None:
            new_g, new_d = new_adversary(x_train.shape[1], config, seed)
            generator = new_g if generator is None else generator
            discriminator = new_d if discriminator is None else discriminator
        cross = None
        if config.prior != "none" and generator.prior is None:
            if y_train is None:
                y_train = predict_logits(classifier, x_train, device=device).argmax(1).numpy()
            n_classes = int(classifier.net[-1].out_features)
            shrink, cov = prior_rules(config)
            marginals = prior_marginals(config)
            generator.prior = fit_transport_prior(x_train, y_train, target, n_classes, kind=config.prior,
                                                  n_components=config.prior_components, seed=seed, shrink=shrink,
                                                  covariance=cov, marginals=marginals)
            if config.prior_folds > 1:
                cross = CrossFittedTransport.fit(x_train, y_train, target, n_classes, kind=config.prior,
                                                 n_components=config.prior_components, folds=config.prior_folds,
                                                 seed=seed, whole=generator.prior, shrink=shrink, covariance=cov,
                                                 marginals=marginals)
            if generator.prior.marginal_genes is not None:
                log.info("%s: the prior maps the marginals of %d zero-inflated genes onto the target's "
                         "(--prior-marginals)", desc, len(generator.prior.marginal_genes))
        plan = AdversarialPlan(classifier, generator, discriminator, x_target, target, config, seed, device)
        if generator.prior is not None and assigns_by_label(config) and y_train is not None:
            plan.train_classes = torch.as_tensor(np.asarray(y_train), dtype=torch.long, device=plan.device)
            plan.val_classes = None if y_val is None else np.asarray(y_val, dtype=np.int64)
        if x_target_val is not None and len(x_target_val) >= MIN_VAL_REFERENCE:
            plan.val_reference = torch.as_tensor(x_target_val, dtype=torch.float32, device=plan.device)
            if config.checkpoint == "realism" and len(x_target_val) >= MIN_TARGET_FOR_CALL_CAP:
                with torch.no_grad():  # the share of the real target samples f calls the target confidently
                    margins = target_margins(classifier(plan.val_reference), target)
                    plan.real_confident = float((margins >= MARGIN_ENOUGH).float().mean())
        elif generator.prior is not None:
            plan.energy_scored = False
        return _train(plan, x_train, x_val, progress, desc, cross)


def new_adversary(n_genes: int, config: GeneratorConfig, seed: int) -> tuple[Generator, Discriminator]:
    """A new generator (``config.zero_init``) and discriminator for ``n_genes``, their weights drawn from ``seed``.

    Weights come from :func:`tspg.nn.seeded`, so the caller's global random state is left as it was.
    """
    with seeded(seed):
        return Generator(n_genes, zero_init=config.zero_init), Discriminator(n_genes)


class AdversarialPlan:
    """The optimisers and target sampler of one generator fit, and its mini-batch step.

    The networks are the caller's (the model owns them); the plan trains them in place. Like scvi-tools'
    ``AdversarialTrainingPlan``, each step alternates two optimisers.

    Parameters
    ----------
    classifier
        The trained, frozen classifier f.
    generator, discriminator
        The networks to train (on ``device``).
    x_target
        Scaled training samples of the target class.
    target
        The target's class index.
    config
        Optimiser settings and loss weights.
    seed
        Seeds the target draws and smoothing noise (a local generator; global state is not touched).
    device
        Torch device.

    One step computes ``G(x)`` once, updates D on ``(real, x_adv)``, then G on its losses through the updated D.
    D's weights need no gradient during G's update (only ``x_adv``'s does), so they are frozen for it: this skips
    the weight-gradient products of D, 6% of a step's arithmetic, and changes no number. With
    ``disc_real="target"`` D's real batch is also ``L_td``'s target batch. The losses stay on the device (no host
    synchronisation per step); the caller sums them once per epoch.
    """

    def __init__(self, classifier: Classifier, generator: Generator, discriminator: Discriminator,
                 x_target: np.ndarray, target: int, config: GeneratorConfig, seed: int,
                 device: torch.device) -> None:
        self.config, self.target, self.device, self.seed = config, target, device, seed
        # with prior_assign label: the training rows' classes (the prior's map per row) and the validation rows'
        # (numpy, before the rows f already calls the target are dropped), and the validation move they give
        self.train_classes: torch.Tensor | None = None
        self.val_classes: np.ndarray | None = None
        self.val_displacement: torch.Tensor | None = None
        #: where the validation part cannot score realism: training rows of other classes and their out-of-fold
        #: prior moves, scored for confident calls beside it (:func:`out_of_fold_check`)
        self.oof_check: OutOfFoldCheck | None = None
        self.w_norm = resolved_w_norm(config, x_target.shape[1])
        self.classifier = classifier
        self.generator = generator.to(device)
        self.discriminator = discriminator.to(device)
        self.d_params = list(self.discriminator.parameters())
        self.opt_g = Adam(self.generator.parameters(), lr=config.lr_generator)
        self.opt_d = Adam(self.d_params, lr=config.lr_discriminator)
        self.sampler = TargetSampler(x_target, config.target_cov, rank=config.target_rank,
                                     shrinkage=config.target_shrinkage, device=device)
        self.dev_gen = torch.Generator(device=device).manual_seed(seed + 1)
        self.precision = resolve_precision(config.precision, device)
        #: f's logits in G's loss (its backward pass only for rows with a gradient)
        self.frozen_classifier = FrozenClassifier(classifier, self.precision, device)
        self.y_target = torch.as_tensor(x_target, dtype=torch.float32, device=device)
        #: the target samples the validation energy distance is measured against (see :func:`fit_generator`)
        self.val_reference = self.y_target
        #: whether the checkpoint rule ranks epochs by the validation energy distance (see :func:`fit_generator`)
        self.energy_scored = True
        #: the share of the target's validation samples f calls the target confidently, which caps the checkpoint's
        #: accuracy part (:func:`checkpoint_score`); None: not measured (too few of them), no cap beyond the usual
        self.real_confident: float | None = None
        self.center = self.sampler.mu
        self.target_sd = self.y_target.std(0) if len(self.y_target) > 1 else torch.zeros_like(self.center)
        # the smoothed bootstrap's constants (see :meth:`target_batch`)
        h = config.td_smoothing
        self.smooth_keep = (1.0 - h * h) ** 0.5
        self.smooth_shift = (1.0 - self.smooth_keep) * self.center
        self.smooth_scale = h * self.target_sd
        self.bandwidths = torch.empty(0, device=device)
        if config.td_loss == "mmd":
            self.bandwidths = median_bandwidth(self.y_target, self.center) * torch.tensor(
                MMD_BANDWIDTH_SCALES, device=device)
        self.n_classes = int(classifier.net[-1].out_features)
        self.sinkhorn_reg = 0.0
        if config.td_loss == "sinkhorn":
            self.sinkhorn_reg = config.sinkhorn_reg * float(median_bandwidth(self.y_target, self.center)) ** 2

    def target_batch(self, n: int) -> torch.Tensor:
        """``n`` real target training samples without replacement (all of them when there are fewer).

        With ``config.td_smoothing`` h > 0 each is replaced by a smoothed-bootstrap draw ``mu + sqrt(1 - h^2)
        (y - mu) + h sd e`` (``e`` standard normal, ``sd`` the per-gene SD): the same mean and per-gene variance,
        but a fresh point at every step, so G cannot fit its samples onto a few fixed target samples.
        """
        y = self.y_target
        if n < len(y):
            y = y[torch.randperm(len(y), generator=self.dev_gen, device=self.device)[:n]]
        h = self.config.td_smoothing
        if h > 0:  # as h sd e + (1 - a) mu + a y, a = sqrt(1 - h^2), in place on e (no temporaries), then clipped
            e = torch.randn(y.shape, generator=self.dev_gen, device=self.device)
            y = e.mul_(self.smooth_scale).add_(self.smooth_shift).add_(y, alpha=self.smooth_keep).clamp_(0.0, 1.0)
        return y

    def td_term(self, x_adv: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The target-distribution term of G's loss, as ``config.td_loss`` names it.

        ``y``: the batch of real target samples to compare ``x_adv`` with (by default a new :meth:`target_batch`);
        the paper's ``draw`` ignores it and draws from the target's Gaussian.
        """
        kind = self.config.td_loss
        if kind == "draw":
            return target_distance_loss(x_adv, self.sampler.sample(len(x_adv), generator=self.dev_gen))
        if y is None:
            y = self.target_batch(len(x_adv))
        if kind == "energy":
            return energy_loss(x_adv, y, self.center)
        if kind == "mmd":
            return mmd_loss(x_adv, y, self.bandwidths, self.center)
        return sinkhorn_loss(x_adv, y, self.sinkhorn_reg, self.center)

    def step(self, x: torch.Tensor, calls: torch.Tensor | None = None,
             displacement: torch.Tensor | None = None) -> torch.Tensor:
        """One discriminator and one generator update on the mini-batch ``x`` (``calls``: f's class of each row).

        ``displacement``: each row's transport-prior move (else the generator's prior computes it).

        Returns
        -------
        The step's ``d_loss, g_loss, gan, adv, norm, td`` as one detached tensor on the device.
        """
        with fp32_products():
            return self._step(x, calls, displacement)

    def _step(self, x: torch.Tensor, calls: torch.Tensor | None, displacement: torch.Tensor | None) -> torch.Tensor:
        cfg = self.config
        real = x if cfg.disc_real == "all" else self.target_batch(len(x))
        with autocast(self.device, self.precision):
            x_adv, g = perturb(self.generator, x, displacement)  # x_adv is fp32 (x is), g may be bf16
            d_real, d_fake = self.discriminator.pair(real, x_adv.detach())
        g = g.float()
        d_loss = gan_discriminator_loss(d_real.float(), d_fake.float())
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()

        for p in self.d_params:
            p.requires_grad_(False)
        try:
            with autocast(self.device, self.precision):
                d_adv = self.discriminator(x_adv)
            logits = self.frozen_classifier(x_adv)
            l_gan = gan_generator_loss(d_adv.float())
            l_adv = adversarial_loss(logits.float(), self.target, cfg.kappa)
            l_norm = norm_loss(g)
            l_td = self.td_term(x_adv, None if cfg.disc_real == "all" else real)  # D's real batch, as one draw
            g_loss = cfg.w_gan * l_gan + cfg.w_adv * l_adv + self.w_norm * l_norm + cfg.w_td * l_td
            if cfg.w_ind > 0 and calls is not None:
                g_loss = g_loss + cfg.w_ind * individual_loss(g, calls, self.n_classes)
            if cfg.w_mean > 0 and calls is not None:
                g_loss = g_loss + cfg.w_mean * group_mean_loss(x_adv, self.center, calls, self.n_classes)
            self.opt_g.zero_grad()
            g_loss.backward()
            self.opt_g.step()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        return torch.stack([d_loss, g_loss, l_gan, l_adv, l_norm, l_td]).detach()


LOSS_NAMES = ("d_loss", "g_loss", "gan", "adv", "norm", "td")


class OutOfFoldCheck:
    """Training rows of other classes than the target, each to be moved by the prior fitted without it.

    Built by :func:`out_of_fold_check`; holds row indices into the training tensor (no copy of the rows), and
    moves (:meth:`RowMoves.move`, each row by its label's map where the plan has the labels, else by its prior's
    nearest centroid's) and scores them a chunk of :data:`OOF_CHUNK` rows at a time, so that its memory stays that
    of one chunk at any number of genes.
    """

    def __init__(self, x_train: torch.Tensor, rows: np.ndarray, row_moves: RowMoves) -> None:
        self.x_train, self.rows, self.row_moves = x_train, rows, row_moves

    def __len__(self) -> int:
        return len(self.rows)

    def moves(self, start: int, stop: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows ``start:stop`` of the check (grouped by their prior) and each one's move by its out-of-fold prior."""
        rows, spans = self.row_moves.cross.grouped(self.rows[start:stop])
        idx = torch.as_tensor(rows, device=self.x_train.device)
        x = self.x_train[idx]
        with torch.no_grad():
            return x, self.row_moves.move(x, idx, spans)

    def confident(self, generator: Generator, classifier: Classifier, target: int,
                  margin: float = MARGIN_ENOUGH) -> int:
        """How many rows ``classifier`` calls ``target`` by ``margin`` logits, moved and perturbed by ``generator``.

        ``generator`` should be in eval mode (as :func:`_validate` puts it). :func:`_validate` asks for
        :data:`MARGIN_ENOUGH` at epoch 0 (the prior alone) and :func:`oof_margin` after.
        """
        count = 0
        with torch.no_grad():
            for start in range(0, len(self), OOF_CHUNK):
                x, disp = self.moves(start, start + OOF_CHUNK)
                x_adv, _ = perturb(generator, x, disp)
                count += int((target_margins(classifier(x_adv), target) >= margin).sum())
        return count


def oof_margin(kappa: float) -> float:
    """The margin (logits) a trained epoch's call on the out-of-fold check counts from: ``kappa``, G's own.

    These rows are G's training rows: a trained epoch's margins on them are those G was fitted to reach, larger
    than a new sample of the same kind gets. Held to the 1-logit margin of new samples (:data:`MARGIN_ENOUGH`),
    training that had reached it on 95% of them (the rule's cap) was kept at epoch 2 on leukemia's seeds 0 and 4
    while one held-out sample of each stayed short of the target; held to ``kappa``, training runs on until G's
    training objective (``L_adv``'s hinge) holds for them (``docs/method.md``, "Calls on the training samples'
    out-of-fold moves"). The prior alone (epoch 0) has not seen them: its calls count from
    :data:`MARGIN_ENOUGH`, as new samples' do. At least :data:`MARGIN_ENOUGH` where ``kappa`` is set lower.
    """
    return max(MARGIN_ENOUGH, float(kappa))


def out_of_fold_check(plan: AdversarialPlan, row_moves: RowMoves | None, x_train: torch.Tensor,
                      calls: torch.Tensor | None = None) -> OutOfFoldCheck | None:
    """The training rows of other classes than the target, to be scored moved by a prior fitted without them.

    Where the validation part has too few target samples to score realism, the ``realism`` rule ranks epochs by
    confident calls alone, and a validation part of a few samples cannot show a prior that leaves one new sample
    in five short of the target (leukemia: 3 validation samples). The training samples moved by their
    out-of-fold prior (:class:`tspg.train.CrossFittedTransport`) are new samples to that prior, so epoch 0's calls
    on them are an honest figure of the prior alone; counted beside the validation part they let training be
    kept where the prior alone leaves them short. A trained epoch's calls on them are in-sample for G, so this
    only decides between the prior alone and training, by the capped share of :func:`checkpoint_score`, and a
    trained epoch's call counts from G's own training margin (:func:`oof_margin`), not from the 1-logit margin of
    new samples.

    ``x_train``: the training part on the plan's device (as :func:`fit_generator` holds it); ``row_moves``: its
    cross-fitted moves (:class:`tspg.train._prior.RowMoves`, with the plan's training classes where it has them).
    A row counts as another class than the target by its label where the plan has the labels, else by f's call
    (``calls`` where the caller has them already, else predicted here). Returns None where there is no
    out-of-fold prior (one fold: too few target samples) or no such row; at most :data:`MAX_OOF_CHECK` rows (a
    sample seeded by the plan's seed).
    """
    if row_moves is None or len(row_moves.cross.priors) < 2:
        return None
    cross = row_moves.cross
    device, target = plan.device, plan.target
    if plan.train_classes is not None:
        calls = plan.train_classes
    elif calls is None:
        calls = predict_logits(plan.classifier, x_train, device=device).argmax(1)
    other = (calls != target).cpu().numpy()
    rows = np.flatnonzero(other & (cross.group < len(cross.priors) - 1))  # the rows an out-of-fold prior moves
    if len(rows) == 0:
        return None
    if len(rows) > MAX_OOF_CHECK:
        rows = np.sort(np.random.default_rng(plan.seed).choice(rows, MAX_OOF_CHECK, replace=False))
    return OutOfFoldCheck(x_train, rows, row_moves)


def _validate(plan: AdversarialPlan, xv: torch.Tensor, prior: EnergyGain | None = None, trained: bool = True
              ) -> tuple[dict, torch.Tensor]:
    """The validation figures of the generator as it is now (eval mode): accuracy, margin, distances.

    With ``prior`` (the validation samples as the prior alone moved them, :class:`EnergyGain`), also
    ``val_energy_z``: :func:`tspg.train.energy_gain_z` of now against the prior alone (NaN without it: epoch 0,
    or energies not scored). ``trained``: G has trained on the out-of-fold check's rows (every epoch but 0), so
    their calls count from :func:`oof_margin`. Returns the row and the perturbed validation samples.
    """
    generator, target = plan.generator, plan.target
    generator.eval()
    with torch.no_grad():
        v_adv, _ = perturb(generator, xv, plan.val_displacement)
        v_logits = plan.classifier(v_adv)
        v_hit = (v_logits.argmax(1) == target).float().mean()
        v_margin = -adversarial_loss(v_logits, target, plan.config.kappa)
        v_confident = (target_margins(v_logits, target) >= MARGIN_ENOUGH).float().mean()
        v_dist = (v_adv - plan.sampler.mu).abs().mean()
        v_energy = energy_loss(v_adv, plan.val_reference, plan.center, unbiased=False)
        values = torch.stack([v_hit, v_confident, v_margin, v_dist, v_energy]).tolist()
        row = dict(zip(("val_accuracy", "val_confident", "val_margin", "val_dist", "val_energy"), values,
                       strict=True))
        row["val_energy_scored"] = float(plan.energy_scored)
        if plan.real_confident is not None:
            row["val_target_confident"] = plan.real_confident
        if generator.prior is not None:
            row["val_energy_z"] = math.nan if prior is None else prior.z(v_adv)
        if plan.oof_check is not None:
            check = plan.oof_check
            margin = oof_margin(plan.config.kappa) if trained else MARGIN_ENOUGH  # in-sample for G once trained
            o_count = check.confident(generator, plan.classifier, target, margin)
            row["train_oof_confident"] = o_count / len(check)
            row["calls_confident"] = (v_confident.item() * len(xv) + o_count) / (len(xv) + len(check))
    return row, v_adv


class Keeper:
    """The checkpoint and early-stopping bookkeeping of a generator fit, one validation row per epoch.

    The best-scoring weights (:func:`checkpoint_score`, with the prior test of :func:`kept_row`) are kept;
    :meth:`offer` says when ``config.patience``
    epochs have passed without a clear gain (:func:`_clear_gain`) or, with ``config.stop_accuracy``, the
    validation accuracy has held for ``config.stop_accuracy_epochs`` epochs.
    """

    def __init__(self, generator: torch.nn.Module, config: GeneratorConfig, desc: str) -> None:
        self.generator, self.config, self.desc = generator, config, desc
        self.best_score: tuple[float, ...] | None = None
        self.ref_score: tuple[float, ...] | None = None  # the score that last reset the patience
        self.best_state: dict | None = None
        self.best_epoch, self.stale, self.saturated = 0, 0, 0

    def start(self, row: dict) -> None:
        """Epoch 0 (the prior alone) is a candidate too."""
        self.best_score = self.ref_score = checkpoint_score(row, self.config.checkpoint)
        self.best_state = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}

    def offer(self, row: dict) -> bool:
        """Score an epoch's row, keep its weights if best; return whether training should stop now."""
        config, epoch = self.config, row["epoch"]
        score = checkpoint_score(row, config.checkpoint)
        prior_kept = self.best_score is not None and self.best_epoch == 0  # start() kept epoch 0, nothing since
        if _replaces(row, score, self.best_score, prior_kept, config.checkpoint):
            self.best_score, self.best_epoch = score, epoch
            self.best_state = {k: v.detach().clone() for k, v in self.generator.state_dict().items()}
        if _clear_gain(score, self.ref_score, config.checkpoint) and not _less_realistic(row, config.checkpoint):
            self.ref_score, self.stale = score, 0
        else:
            self.stale += 1
        if config.patience and self.stale >= config.patience:
            log.info("%s: no clear gain of the validation score for %d epochs; stopping at epoch %d", self.desc,
                     self.stale, epoch)
            return True
        if config.stop_accuracy is not None:
            self.saturated = self.saturated + 1 if row["val_accuracy"] >= config.stop_accuracy else 0
            if self.saturated >= config.stop_accuracy_epochs:
                log.info("%s: validation perturbation accuracy >= %g for %d epochs; stopping at epoch %d", self.desc,
                         config.stop_accuracy, self.saturated, epoch)
                return True
        return False

    def restore(self) -> None:
        """Load the kept weights into the generator (eval mode)."""
        self.generator.load_state_dict(self.best_state)
        self.generator.eval()


def _train(plan: AdversarialPlan, x_train: np.ndarray, x_val: np.ndarray, progress: bool,
           desc: str, cross: CrossFittedTransport | None = None) -> tuple[Generator, list[dict]]:
    config, device, classifier, target = plan.config, plan.device, plan.classifier, plan.target
    warn_if_slow_precision(device, config.precision)
    gen = torch.Generator(device="cpu").manual_seed(plan.seed)
    generator = plan.generator
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    if cross is None and generator.prior is not None:  # prior_folds 1: the whole part's prior moves every row
        cross = CrossFittedTransport(np.zeros(len(xt), dtype=np.int64), [generator.prior])
    # each training row's prior move, its PCA-space part computed once (each row's label's map, else the nearest)
    row_moves = None if cross is None else RowMoves(cross.to(device), xt, plan.train_classes)
    # f's call of each training sample: the groups of L_ind (no labels needed; f is ~exact on its training part)
    calls = None
    if config.w_ind > 0 or config.w_mean > 0:
        calls = predict_logits(classifier, x_train, device=device).argmax(1).to(device)
    if len(x_val) == 0:
        log.warning("no validation samples: scoring checkpoints on the training part")
        x_val = x_train
        if plan.train_classes is not None:
            plan.val_classes = plan.train_classes.cpu().numpy()
    val_before = predict_logits(classifier, x_val, device=device).argmax(1).numpy()
    fresh = val_before != target if (val_before != target).any() else np.ones(len(x_val), dtype=bool)
    xv = torch.as_tensor(x_val[fresh], dtype=torch.float32, device=device)
    if plan.val_classes is not None and len(plan.val_classes) == len(x_val) and generator.prior is not None:
        # the prior is fixed while G trains: each validation sample's move by its own class's map, once
        with torch.no_grad():
            classes = torch.as_tensor(plan.val_classes[fresh], dtype=torch.long, device=device)
            plan.val_displacement = generator.prior(xv, classes)

    if not plan.energy_scored and config.checkpoint == "realism":
        plan.oof_check = out_of_fold_check(plan, row_moves, xt, calls)

    batch = min(config.batch_size, len(xt))
    steps = max(math.ceil(len(xt) / batch), config.min_steps_per_epoch)
    keeper = Keeper(generator, config, desc)
    history: list[dict] = []
    prior = None
    if generator.prior is not None:  # epoch 0: the prior alone (G = 0 with zero_init) is a candidate too
        first, prior_adv = _validate(plan, xv, trained=False)
        if plan.energy_scored:  # later epochs' val_energy_z is against this moving of the validation samples
            prior = EnergyGain(prior_adv, plan.val_reference, plan.center, seed=plan.seed)
        row = {"epoch": 0, **dict.fromkeys(LOSS_NAMES, math.nan), **first}
        keeper.start(row)
        history.append(row)
    bar = epoch_bar(config.epochs, desc, progress)
    order = torch.empty(0, dtype=torch.long, device=device)
    pos, spans = 0, []
    for epoch in range(1, config.epochs + 1):
        generator.train()
        plan.discriminator.train()
        sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float64, device=device)
        for _ in range(steps):
            if pos + batch > len(order):
                order = torch.randperm(len(xt), generator=gen)
                if row_moves is not None:  # each batch's rows grouped by the fold prior that moves them
                    order, spans = row_moves.cross.batches(order, batch)
                order, pos = order.to(device), 0
            idx = order[pos:pos + batch]
            x, disp = xt[idx], None
            if row_moves is not None:  # a random share in [prior_share_low, 1] of each row's move
                with torch.no_grad():
                    move = row_moves.move(x, idx, spans[pos // batch])
                disp = partial_moves(move, config.prior_share_low, plan.dev_gen)
            pos += batch
            sums += plan.step(x, None if calls is None else calls[idx], disp).double()
        row = {"epoch": epoch, **dict(zip(LOSS_NAMES, (sums / steps).tolist(), strict=True))}

        row.update(_validate(plan, xv, prior)[0])
        stop = keeper.offer(row)
        history.append(row)
        bar.update(1)
        bar.set_postfix(adv=f"{row['adv']:.3g}", td=f"{row['td']:.3g}", val_acc=f"{row['val_accuracy']:.3f}")
        if stop:
            break
    bar.close()
    keeper.restore()
    kept = next((r for r in history if r["epoch"] == keeper.best_epoch), history[-1])  # (the score may be capped)
    log.info("%s: best epoch %d of %d (validation perturbation accuracy %.3f)", desc, keeper.best_epoch,
             history[-1]["epoch"], kept["val_accuracy"])
    return generator, history
