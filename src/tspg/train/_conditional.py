"""The conditional generator: one G(x, t) trained once for every target (``--generator conditional``).

Each step draws a mini-batch of training samples and deals it out to a few targets (groups of about
:data:`GROUP_SIZE` samples, none sent to its own class); G's losses are the per-target generator's, each taken
per group with that group's target: the margin of its target's logit (L_adv), a conditional discriminator D(x, t)
whose real samples are the group target's training samples (L_GAN), the energy distance or MMD of the group's
perturbed samples to a batch of its target's samples (L_td), L_norm, and L_ind per (class, target). Checkpoints
and early stopping use the validation score of :func:`tspg.train.checkpoint_score`, averaged over the targets.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from tspg.nn import Classifier, ConditionalGenerator, ConditionalPrior, Discriminator, perturb, seeded
from tspg.nn._modules import TargetView
from tspg.train._adversarial import LOSS_NAMES, MARGIN_ENOUGH, MIN_VAL_REFERENCE, Keeper
from tspg.train._classifier import predict_logits
from tspg.train._config import GeneratorConfig, assigns_by_label, prior_rules, resolved_w_norm
from tspg.train._frozen import FrozenClassifier, frozen_weights
from tspg.train._hardware import autocast, resolve_device, resolve_precision, warn_if_slow_precision
from tspg.train._losses import (
    MMD_BANDWIDTH_SCALES,
    EnergyGain,
    energy_loss,
    gan_discriminator_loss,
    gan_generator_loss,
    individual_loss,
    median_bandwidth,
    mmd_loss,
    norm_loss,
    target_margins,
)
from tspg.train._optim import Adam
from tspg.train._prior import (
    FAR,
    MIN_SAMPLES_FOR_COVARIANCE,
    N_COMPONENTS,
    SHRINKS,
    class_gaussians,
    fold_of_rows,
    partial_moves,
    prior_space,
    shrunk_class_means,
)
from tspg.train._progress import epoch_bar

log = logging.getLogger(__name__)

#: Samples per target in a step's groups (a step serves batch_size // GROUP_SIZE targets).
GROUP_SIZE = 8
#: Validation samples per target scored after each epoch (a fixed random subset of those of other classes).
VAL_PER_TARGET = 64
#: Target-distribution terms and discriminator inputs the conditional generator supports.
CONDITIONAL_TD_LOSSES = ("energy", "mmd")


def check_conditional_config(config: GeneratorConfig) -> None:
    """Raise :class:`~tspg.data.InputError` for settings the conditional generator does not have (naming each)."""
    from tspg.data import InputError

    if config.td_loss not in CONDITIONAL_TD_LOSSES:
        raise InputError(f"`td_loss={config.td_loss}` is not available with `generator=conditional`; use "
                         f"`td_loss={' or '.join(CONDITIONAL_TD_LOSSES)}` or `generator=per-target`.")
    if config.disc_real != "target":
        raise InputError("`disc_real=all` is not available with `generator=conditional` (its discriminator is "
                         "conditional on the target); use `disc_real=target` or `generator=per-target`.")
    if config.w_mean > 0:
        raise InputError("`w_mean` is not available with `generator=conditional`; leave it at 0.")
    if config.prior_marginals == "zero-inflated":
        raise InputError("`prior_marginals=zero-inflated` is not available with `generator=conditional` (its prior "
                         "has no marginal maps); use `prior_marginals=auto` or `prior_marginals=none`, or "
                         "`generator=per-target`.")


def fit_conditional_prior(x_train: np.ndarray, y_train: np.ndarray, targets: list[int], n_classes: int,
                          kind: str = "ot", n_components: int = N_COMPONENTS, seed: int = 0,
                          covariance: str = "own", shrink: str = "none") -> ConditionalPrior:
    """Fit the transport of every class onto every target in one PCA space (:class:`tspg.nn.ConditionalPrior`).

    Each target's maps are those of :func:`tspg.train.fit_transport_prior` (Gaussian OT between Ledoit-Wolf
    Gaussians in the PCA space, or the class-mean shift), with the PCA and each class's Gaussian computed once;
    ``covariance`` as there (:func:`tspg.train.class_gaussians`). ``shrink`` (``eb`` or ``js``): a class's
    training mean lands on ``mu_c + (m_t - m_c)`` rather than on the target's mean, ``m`` the classes' means
    shrunk towards the mean of all class means (:func:`tspg.train.shrunk_class_means`; ``none``: ``m = mu``).
    """
    if shrink not in SHRINKS:
        raise ValueError(f"shrink must be one of {', '.join(SHRINKS)}, not {shrink!r}")
    x_train, y_train, pca, comp, z = prior_space(x_train, y_train, kind, n_components, seed)
    k, g = comp.shape
    centroids = np.full((n_classes, k), FAR)
    outside = np.zeros((n_classes, g))
    gauss = class_gaussians(z, y_train, covariance, seed) if kind == "ot" else {}
    present = [c for c in range(n_classes) if (y_train == c).any()]
    shrunk = shrunk_class_means(x_train, y_train, present, shrink) if shrink != "none" else {}
    # the PCA part of each class's mean moved by the shrinkage (the maps move the PCA means onto each other)
    moved = np.zeros((n_classes, k))
    for c in present:
        rows = y_train == c
        centroids[c] = z[rows].mean(0)
        mu = x_train[rows].mean(0, dtype=np.float64)
        if c in shrunk:
            moved[c] = (shrunk[c] - mu) @ comp.T
            mu = shrunk[c]
        outside[c] = mu - (mu @ comp.T) @ comp
    maps = np.zeros((len(targets), n_classes, k, k))
    shifts = np.zeros((len(targets), n_classes, k))
    for i, t in enumerate(targets):
        if t not in present:
            raise ValueError("a target class has no training sample")
        for c in present:
            if c == t:
                continue
            if kind == "ot" and (y_train == c).sum() >= MIN_SAMPLES_FOR_COVARIANCE:
                from ot.gaussian import bures_wasserstein_mapping

                a, b = bures_wasserstein_mapping(gauss[c][0], gauss[t][0], gauss[c][1], gauss[t][1])
                maps[i, c], shifts[i, c] = a - np.eye(k), b
            else:
                shifts[i, c] = (gauss[t][0] if kind == "ot" else z[y_train == t].mean(0)) - centroids[c]
            shifts[i, c] += moved[t] - moved[c]
    prior = ConditionalPrior(g, n_classes, k, targets)
    for name, v in {"center": pca.mean_, "components": comp, "centroids": centroids, "outside_means": outside,
                    "maps": maps, "shifts": shifts}.items():
        getattr(prior, name).copy_(torch.as_tensor(np.asarray(v), dtype=torch.float32))
    return prior


def new_conditional_adversary(n_genes: int, n_targets: int, config: GeneratorConfig,
                              seed: int) -> tuple[ConditionalGenerator, Discriminator]:
    """A new conditional generator and a discriminator of ``(x, one-hot target)``, weights drawn from ``seed``."""
    with seeded(seed):
        return (ConditionalGenerator(n_genes, n_targets, zero_init=config.zero_init),
                Discriminator(n_genes + n_targets))


class ConditionalPlan:
    """Optimisers, target pools and the mini-batch step of one conditional generator fit.

    Parameters
    ----------
    classifier
        The trained, frozen classifier f.
    generator, discriminator
        The networks to train in place (D takes a sample and its target's one-hot code).
    x_train, y_train
        Scaled training samples of every class and their class indices.
    targets
        Class index of each target, in the generator's order.
    config, seed, device
        As :class:`tspg.train.AdversarialPlan`.
    folds
        For cross-fitting: each training row's fold, the prior fitted without each fold, the rows to move by
        the whole part's prior instead (their class has no sample outside their fold, or is a small target's), and
        per target whether it is too small to be cross-fitted (its rows move by the whole prior). None: the whole
        prior for every row.
    """

    def __init__(self, classifier: Classifier, generator: ConditionalGenerator, discriminator: Discriminator,
                 x_train: np.ndarray, y_train: np.ndarray, targets: list[int], config: GeneratorConfig, seed: int,
                 device: torch.device,
                 folds: tuple[np.ndarray, list[ConditionalPrior], np.ndarray, np.ndarray] | None = None
                 ) -> None:
        self.config, self.device, self.seed, self.targets = config, device, seed, list(targets)
        self.classifier = classifier
        self.generator = generator.to(device)
        self.discriminator = discriminator.to(device)
        self.d_params = list(self.discriminator.parameters())
        self.opt_g = Adam(self.generator.parameters(), lr=config.lr_generator)
        self.opt_d = Adam(self.d_params, lr=config.lr_discriminator)
        self.precision = resolve_precision(config.precision, device)
        #: f's logits in G's loss (its backward pass only for rows with a gradient)
        self.frozen_classifier = FrozenClassifier(classifier, self.precision, device)
        self.w_norm = resolved_w_norm(config, x_train.shape[1])
        self.n_targets = len(targets)
        self.n_classes = int(classifier.net[-1].out_features)
        self.pools = [torch.as_tensor(x_train[y_train == t], dtype=torch.float32, device=device) for t in targets]
        self.centers = [p.mean(0) for p in self.pools]
        self.bandwidths = [median_bandwidth(p, c) * torch.tensor(MMD_BANDWIDTH_SCALES, device=device)
                           for p, c in zip(self.pools, self.centers, strict=True)] if config.td_loss == "mmd" else []
        self.target_class = torch.as_tensor(self.targets, dtype=torch.long, device=device)
        self.codes = torch.eye(self.n_targets, device=device)[:, None, :]  # target i's one-hot code: codes[i]
        self.cpu_gen = torch.Generator(device="cpu").manual_seed(seed + 2)
        self.folds = None if folds is None else (folds[0], [p.to(device) for p in folds[1]], *folds[2:])
        self.dev_gen = torch.Generator(device=device).manual_seed(seed + 1)
        #: with ``prior_assign`` label (or auto) and a prior: each training row's class, whose map moves it
        self.train_classes: torch.Tensor | None = None
        if generator.prior is not None and assigns_by_label(config):
            self.train_classes = torch.as_tensor(y_train, dtype=torch.long, device=device)

    def assign(self, y: np.ndarray) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
        """A target (index into the target order) for each row of a batch of classes ``y``, and the groups.

        ``batch // GROUP_SIZE`` targets (at most all, at least two where there are two) are drawn at random and
        the rows dealt out to them in turn; a row dealt its own class goes to the next target drawn (with a single
        target its own samples stay, as in the per-target generator's training). Decided on the host, so that the
        step never waits for the device.
        """
        n = len(y)
        m = max(min(2, self.n_targets), min(self.n_targets, n // GROUP_SIZE))
        drawn = torch.randperm(self.n_targets, generator=self.cpu_gen)[:m].numpy()
        order = torch.randperm(n, generator=self.cpu_gen).numpy()
        t = np.empty(n, dtype=np.int64)
        t[order] = drawn[np.arange(n) % m]
        if m > 1:
            own = np.asarray(self.targets)[t] == y
            if own.any():
                nxt = {int(a): int(b) for a, b in zip(drawn, np.roll(drawn, -1), strict=True)}
                t[own] = [nxt[int(v)] for v in t[own]]
        groups = [(int(i), np.flatnonzero(t == i)) for i in np.unique(t)]
        return t, groups

    def real_batch(self, index: int, n: int) -> torch.Tensor:
        """``n`` training samples of target ``index`` without replacement (all of them when there are fewer)."""
        pool = self.pools[index]
        if n >= len(pool):
            return pool
        return pool[torch.randperm(len(pool), generator=self.dev_gen, device=self.device)[:n]]

    def displacement(self, x: torch.Tensor, t: torch.Tensor, t_host: np.ndarray, idx: np.ndarray,
                     classes: torch.Tensor | None = None) -> torch.Tensor:
        """Each row's prior move towards its target (``t``, and ``t_host`` on the host), cross-fitted where it can be.

        A row moves by the prior fitted without its fold (cross-fitting), else by the whole training part's
        (``prior_folds`` 1, a row whose class has no sample outside its fold, or a target with fewer training
        samples than folds). ``idx``: the rows' indices in the training part; ``classes``: each row's class, whose
        map moves it (else the nearest centroid's). Times a random share in [``prior_share_low``, 1] of the move,
        as :func:`tspg.train.fit_generator` does.
        """
        if self.folds is None:  # prior_folds 1: the whole part's prior
            return partial_moves(self.generator.prior(x, t, classes), self.config.prior_share_low, self.dev_gen)
        fold, priors, alone, whole_target = self.folds
        # the whole part's prior for a row whose class has no sample outside its fold, or whose target has too few
        # training samples to be cross-fitted (as tspg.train.CrossFittedTransport does for one target)
        f = np.where(alone[idx] | whole_target[t_host], -1, fold[idx])
        out = torch.empty_like(x)
        for j in np.unique(f):
            rows = torch.as_tensor(np.flatnonzero(f == j), device=self.device)
            prior = self.generator.prior if j < 0 else priors[j]
            out[rows] = prior(x[rows], t[rows], None if classes is None else classes[rows])
        return partial_moves(out, self.config.prior_share_low, self.dev_gen)

    def step(self, x: torch.Tensor, y: np.ndarray, calls: torch.Tensor | None,
             idx: np.ndarray | None = None, classes: torch.Tensor | None = None) -> torch.Tensor:
        """One discriminator and one generator update on the mini-batch ``x`` of classes ``y`` (host array).

        ``idx``: the rows' indices in the training part (for their cross-fitted prior moves); ``classes``: the
        rows' classes on the device, whose maps of the prior move them (None: the nearest centroid's).

        Returns
        -------
        The step's ``d_loss, g_loss, gan, adv, norm, td`` as one detached tensor on the device.
        """
        cfg = self.config
        t_host, groups = self.assign(y)
        t = torch.as_tensor(t_host, device=self.device)
        code = torch.nn.functional.one_hot(t, self.n_targets).float()
        reals, real_codes, pieces = [], [], []
        for i, rows in groups:
            r = self.real_batch(i, len(rows))
            reals.append(r)
            real_codes.append(self.codes[i].expand(len(r), -1))
            pieces.append((i, torch.as_tensor(rows, device=self.device), r))
        real = torch.cat([torch.cat(reals), torch.cat(real_codes)], 1)
        if self.generator.prior is not None and idx is not None:
            with torch.no_grad():
                moved = x + self.displacement(x, t, t_host, idx, classes)
        else:
            moved = self.generator.transport(x, t, classes)
        with autocast(self.device, self.precision):
            g = self.generator(moved, t)
            x_adv = torch.clamp(moved + g.float(), torch.clamp(x, max=0.0), torch.clamp(x, min=1.0))
            d_real, d_fake = self.discriminator.pair(real, torch.cat([x_adv.detach(), code], 1))
        g = g.float()
        d_loss = gan_discriminator_loss(d_real.float(), d_fake.float())
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        for p in self.d_params:
            p.requires_grad_(False)
        try:
            with autocast(self.device, self.precision):
                d_adv = self.discriminator(torch.cat([x_adv, code], 1))
            logits = self.frozen_classifier(x_adv)
            l_gan = gan_generator_loss(d_adv.float())
            logits = logits.float()
            tc = self.target_class[t]
            own = logits.gather(1, tc[:, None]).squeeze(1)
            others = logits.masked_fill(torch.nn.functional.one_hot(tc, self.n_classes).bool(), float("-inf"))
            l_adv = torch.clamp(others.max(1).values - own, min=-cfg.kappa).mean()
            l_norm = norm_loss(g)
            terms = []
            for i, rows, r in pieces:
                if len(rows) < 2 or len(r) < 2:
                    continue
                if cfg.td_loss == "mmd":
                    terms.append(mmd_loss(x_adv[rows], r, self.bandwidths[i], self.centers[i]) * len(rows))
                else:
                    terms.append(energy_loss(x_adv[rows], r, self.centers[i]) * len(rows))
            l_td = torch.stack(terms).sum() / len(x) if terms else x_adv.new_zeros(())
            g_loss = cfg.w_gan * l_gan + cfg.w_adv * l_adv + self.w_norm * l_norm + cfg.w_td * l_td
            if cfg.w_ind > 0 and calls is not None:
                g_loss = g_loss + cfg.w_ind * individual_loss(g, calls * self.n_targets + t,
                                                              self.n_classes * self.n_targets)
            self.opt_g.zero_grad()
            g_loss.backward()
            self.opt_g.step()
        finally:
            for p in self.d_params:
                p.requires_grad_(True)
        return torch.stack([d_loss, g_loss, l_gan, l_adv, l_norm, l_td]).detach()


class _Validation:
    """The fixed validation part of a conditional fit, per target (built by :func:`_validation_set`).

    ``sets``: up to :data:`VAL_PER_TARGET` validation samples f does not call the target; ``moves``: their move by
    the prior (None: the nearest centroid's, computed by :func:`perturb`); ``refs``: the target's own validation
    samples where it has at least :data:`MIN_VAL_REFERENCE` (else None); ``gains``: per target with ``refs``, the
    prior alone's moving of ``sets`` (:class:`EnergyGain`), set after epoch 0.
    """

    def __init__(self, sets: list[torch.Tensor], moves: list[torch.Tensor | None],
                 refs: list[torch.Tensor | None]) -> None:
        self.sets, self.moves, self.refs = sets, moves, refs
        self.gains: list[EnergyGain | None] = [None] * len(sets)


def _validation_set(plan: ConditionalPlan, x_val: np.ndarray, y_val: np.ndarray | None,
                    references: bool = True) -> _Validation:
    """Per target, up to :data:`VAL_PER_TARGET` validation samples f does not call that target (fixed subset).

    Also each set's move by the prior, computed once (the prior is fixed while G trains): by each sample's own
    class's map where ``y_val`` is given and the plan assigns by label, else by the nearest centroid's (None); and
    each target's own validation samples, the reference of its validation energy distance (``y_val`` needed;
    none with ``references`` False).
    """
    device = plan.device
    calls = predict_logits(plan.classifier, x_val, device=device).argmax(1).numpy()
    rng = np.random.default_rng(plan.seed)
    y_val = None if y_val is None else np.asarray(y_val)
    sets, moves, refs = [], [], []
    for i, t in enumerate(plan.targets):
        rows = np.flatnonzero(calls != t)
        if len(rows) == 0:
            rows = np.arange(len(x_val))
        if len(rows) > VAL_PER_TARGET:
            rows = np.sort(rng.choice(rows, VAL_PER_TARGET, replace=False))
        xv = torch.as_tensor(x_val[rows], dtype=torch.float32, device=device)
        sets.append(xv)
        move = None
        if y_val is not None and plan.train_classes is not None:
            with torch.no_grad():
                classes = torch.as_tensor(y_val[rows], dtype=torch.long, device=device)
                move = plan.generator.prior(xv, torch.full_like(classes, i), classes)
        moves.append(move)
        own = None if y_val is None or not references else np.flatnonzero(y_val == t)
        refs.append(None if own is None or len(own) < MIN_VAL_REFERENCE
                    else torch.as_tensor(x_val[own], dtype=torch.float32, device=device))
    return _Validation(sets, moves, refs)


def _validate(plan: ConditionalPlan, val: _Validation) -> tuple[dict, list[torch.Tensor]]:
    """The per-target validation figures of :func:`tspg.train.fit_generator`, averaged over the targets.

    ``val_energy``: the mean over the targets with their own validation samples (:data:`MIN_VAL_REFERENCE`) of
    the energy distance to them; where no target has them, to each target's training samples, and then with a
    prior not scored (``val_energy_scored`` 0, as a per-target fit). ``val_energy_z`` (with a prior, from epoch
    1): the change of those targets' energy distances against the prior alone, summed, over the square root of
    the summed squared standard errors (:meth:`EnergyGain.gain`; targets with non-finite values left out). That
    treats the targets' comparisons as independent, which they are not quite (one G, and a validation sample can
    be in several targets' sets), so the combined standard error is if anything too small. Returns the row and the
    perturbed sets.
    """
    generator = plan.generator
    generator.eval()
    figures, energies, advs = [], [], []
    change, variance, counted = 0.0, 0.0, 0
    scored = any(r is not None for r in val.refs)
    with torch.no_grad():
        for i, (xv, move, ref, t) in enumerate(zip(val.sets, val.moves, val.refs, plan.targets, strict=True)):
            v_adv, _ = perturb(TargetView(generator, i), xv, move)
            advs.append(v_adv)
            logits = plan.classifier(v_adv)
            margins = target_margins(logits, t)
            figures.append(torch.stack([
                (logits.argmax(1) == t).float().mean(),
                (margins >= MARGIN_ENOUGH).float().mean(),
                torch.clamp(margins, max=plan.config.kappa).mean(),
                (v_adv - plan.centers[i]).abs().mean(),
            ]))
            if scored and ref is not None:
                energies.append(energy_loss(v_adv, ref, plan.centers[i], unbiased=False))
            elif not scored:
                energies.append(energy_loss(v_adv, plan.pools[i], plan.centers[i], unbiased=False))
            if val.gains[i] is not None:
                d, se = val.gains[i].gain(v_adv)
                if math.isfinite(d) and math.isfinite(se):  # a target with non-finite values is left out
                    change, variance, counted = change + d, variance + se * se, counted + 1
        values = torch.stack(figures).mean(0).tolist() + [float(torch.stack(energies).mean())]
    row = dict(zip(("val_accuracy", "val_confident", "val_margin", "val_dist", "val_energy"), values, strict=True))
    row["val_energy_scored"] = float(scored or generator.prior is None)
    if generator.prior is not None:
        if counted == 0:
            row["val_energy_z"] = math.nan
        else:
            row["val_energy_z"] = change / math.sqrt(variance) if variance > 0 else 0.0
    return row, advs


def fit_conditional_generator(
    classifier: Classifier,
    x_train: np.ndarray,
    y_train: np.ndarray,
    targets: list[int],
    x_val: np.ndarray,
    config: GeneratorConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "conditional generator",
    y_val: np.ndarray | None = None,
    class_names: list[str] | None = None,
) -> tuple[ConditionalGenerator, list[dict]]:
    """Train one generator G(x, t) for every target in ``targets`` (see the module's text).

    Parameters
    ----------
    classifier
        The trained classifier f; it is frozen.
    x_train, y_train
        Scaled training samples of every class and their class indices.
    targets
        Class index of each target (the generator's target order).
    x_val
        Scaled validation samples (for the checkpoint and early stopping). When empty, the training part is
        scored instead, its energy distance against the training samples and, with a prior, not ranked on.
    config
        As :func:`tspg.train.fit_generator`; ``td_loss`` energy or mmd, ``disc_real`` target, ``w_mean`` 0
        (:func:`check_conditional_config`). With a prior, it is fitted here (:func:`fit_conditional_prior`), and
        with ``prior_folds`` > 1 each training sample is moved by the prior of the folds without it.
    seed, device, progress, desc
        As :func:`tspg.train.fit_generator`.
    y_val
        Class index of each row of ``x_val``: with ``config.prior_assign`` ``label`` (``auto``) the prior moves
        each validation sample by its own class's map, as it moves the training samples (which ``y_train``
        labels); without it, by the nearest class centroid's.
    class_names
        The classes' names, for the log (by default their indices).

    Returns
    -------
    The trained generator (eval mode) and one history row per epoch (validation figures averaged over targets).
    """
    config.validate()
    check_conditional_config(config)
    if y_val is not None and len(y_val) != len(x_val):
        raise ValueError(f"y_val has {len(y_val)} labels for {len(x_val)} validation samples")
    device = resolve_device(device)
    warn_if_slow_precision(device, config.precision)
    classifier = classifier.to(device).eval()
    y_train = np.asarray(y_train)
    n_classes = int(classifier.net[-1].out_features)
    with frozen_weights(classifier):  # f is not trained here; its flags are put back after
        generator, discriminator = new_conditional_adversary(x_train.shape[1], len(targets), config, seed)
        plan_folds = None
        if config.prior != "none":
            shrink, cov = prior_rules(config)
            generator.prior = fit_conditional_prior(x_train, y_train, targets, n_classes, kind=config.prior,
                                                    n_components=config.prior_components, seed=seed, covariance=cov,
                                                    shrink=shrink)
            # a target with fewer training samples than folds is not cross-fitted (as for one target): its rows
            # move by the whole part's prior, and its samples are in every fold prior (whose maps to it go unused)
            whole_target = np.array([(y_train == t).sum() < config.prior_folds for t in targets])
            if config.prior_folds > 1 and not whole_target.all():
                fold = fold_of_rows(y_train, config.prior_folds, seed)
                small = np.isin(y_train, np.asarray(targets)[whole_target])
                priors = [fit_conditional_prior(x_train[(fold != j) | small], y_train[(fold != j) | small], targets,
                                                n_classes, kind=config.prior, n_components=config.prior_components,
                                                seed=seed, covariance=cov, shrink=shrink)
                          for j in range(config.prior_folds)]
                # a row whose class has no sample outside its fold is moved by the whole part's prior, as is a row
                # of a small target's class (in every fold prior, so none of them is out of fold for it)
                alone = small | np.array([not ((fold != f) & (y_train == c)).any()
                                          for f, c in zip(fold, y_train, strict=True)])
                plan_folds = (fold, priors, alone, whole_target)
            if config.prior_folds > 1 and whole_target.any():
                short = [class_names[t] if class_names else str(t) for t in np.asarray(targets)[whole_target]]
                log.info("targets with fewer than %d training samples are not cross-fitted (their moves are the "
                         "whole training part's prior): %s", config.prior_folds, ", ".join(short))
        plan = ConditionalPlan(classifier, generator, discriminator, x_train, y_train, targets, config, seed, device,
                               folds=plan_folds)
        return _train(plan, x_train, y_train, x_val, progress, desc, y_val)


def _train(plan: ConditionalPlan, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, progress: bool,
           desc: str, y_val: np.ndarray | None = None) -> tuple[ConditionalGenerator, list[dict]]:
    config, device, generator = plan.config, plan.device, plan.generator
    gen = torch.Generator(device="cpu").manual_seed(plan.seed)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    calls = None
    if config.w_ind > 0:
        calls = predict_logits(plan.classifier, x_train, device=device).argmax(1).to(device)
    if len(x_val) == 0:
        log.warning("no validation samples: scoring checkpoints on the training part")
        # the training samples move by their labels, but are no reference: L_td pulls towards them
        val = _validation_set(plan, x_train, y_train, references=False)
    else:
        val = _validation_set(plan, x_val, y_val)
    batch = min(config.batch_size, len(xt))
    steps = max(math.ceil(len(xt) / batch), config.min_steps_per_epoch)
    keeper = Keeper(generator, config, desc)
    history: list[dict] = []
    if generator.prior is not None:  # epoch 0: the prior alone
        first, prior_advs = _validate(plan, val)
        # later epochs' val_energy_z is against this moving of each target's validation samples
        val.gains = [None if ref is None else EnergyGain(a, ref, plan.centers[i], seed=plan.seed + i)
                     for i, (a, ref) in enumerate(zip(prior_advs, val.refs, strict=True))]
        row = {"epoch": 0, **dict.fromkeys(LOSS_NAMES, math.nan), **first}
        keeper.start(row)
        history.append(row)
    bar = epoch_bar(config.epochs, desc, progress)
    order = np.empty(0, dtype=np.int64)
    pos = 0
    for epoch in range(1, config.epochs + 1):
        generator.train()
        plan.discriminator.train()
        sums = torch.zeros(len(LOSS_NAMES), dtype=torch.float64, device=device)
        for _ in range(steps):
            if pos + batch > len(order):
                order = torch.randperm(len(xt), generator=gen).numpy()
                pos = 0
            idx = order[pos:pos + batch]
            pos += batch
            rows = torch.as_tensor(idx, device=device)
            classes = None if plan.train_classes is None else plan.train_classes[rows]
            sums += plan.step(xt[rows], y_train[idx], None if calls is None else calls[rows], idx, classes).double()
        row = {"epoch": epoch, **dict(zip(LOSS_NAMES, (sums / steps).tolist(), strict=True))}
        row.update(_validate(plan, val)[0])
        stop = keeper.offer(row)
        history.append(row)
        bar.update(1)
        bar.set_postfix(adv=f"{row['adv']:.3g}", td=f"{row['td']:.3g}", val_acc=f"{row['val_accuracy']:.3f}")
        if stop:
            break
    bar.close()
    keeper.restore()
    kept = next((r for r in history if r["epoch"] == keeper.best_epoch), history[-1])  # (the score may be capped)
    log.info("%s: best epoch %d of %d (validation perturbation accuracy %.3f, mean over %d targets)", desc,
             keeper.best_epoch, history[-1]["epoch"], kept["val_accuracy"], plan.n_targets)
    return generator, history
