"""Training settings, with the paper's values as defaults where the paper gives them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from tspg._options import (  # noqa: F401 (PAPER_LOSS re-exported)
    CHECKPOINT_RULES,
    DISC_REAL,
    PAPER_LOSS,
    PRECISIONS,
    PRIOR_ASSIGNS,
    PRIOR_COVARIANCES,
    PRIOR_MARGINALS,
    PRIOR_SHRINKS,
    PRIORS,
    TARGET_COV_MODELS,
    TD_LOSSES,
)
from tspg.data import InputError


def _fail(config: object, name: str, problem: str) -> None:
    raise InputError(f"`{type(config).__name__}.{name}` {problem}, not {getattr(config, name)!r}.")


def _check_int(config: object, name: str, low: int) -> None:
    value = getattr(config, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        _fail(config, name, f"must be an integer >= {low}")


def _check_number(config: object, name: str, low: float = 0.0, high: float | None = None, *,
                  open_low: bool = False, none_ok: bool = False) -> None:
    value = getattr(config, name)
    if value is None and none_ok:
        return
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and (high is None or value <= high)
    if not ok:
        bound = f"> {low}" if open_low else f">= {low}"
        _fail(config, name, f"must be a finite number {bound}" + (f" and <= {high}" if high is not None else ""))


def _check_choice(config: object, name: str, allowed: tuple[str, ...]) -> None:
    if getattr(config, name) not in allowed:
        _fail(config, name, f"must be one of {', '.join(allowed)}")


@dataclass
class ClassifierConfig:
    """Settings of the classifier f.

    Attributes
    ----------
    hidden
        Hidden layer sizes (paper: 1024-512-128).
    lr
        Adam learning rate (paper: 1e-3).
    batch_size
        Mini-batch size.
    epochs
        Maximum epochs; training stops earlier when the validation loss has not improved for ``patience``
        epochs, and the weights of the best validation epoch are kept.
    patience
        Early-stopping patience in epochs (an improvement must lower the validation loss by 1e-3). Training also
        stops as soon as the best validation loss is below 1e-3, since no later epoch could then replace it.
        0 runs every epoch.
    precision
        ``fp32`` (the default), ``auto`` or ``bf16`` (mixed precision: matrix products in bfloat16, weights in
        fp32). See :attr:`GeneratorConfig.precision`. Unlike the generator's, the default stays ``fp32``: in bf16
        the classifier's held-out accuracy on pbmc68k fell from 0.799 to 0.782 (lower on 4 of 5 seeds;
        ``docs/method.md``, "Precision").
    """

    hidden: tuple[int, ...] = (1024, 512, 128)
    lr: float = 1e-3
    batch_size: int = 32
    epochs: int = 100
    patience: int = 10
    precision: str = "fp32"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (also called before training, so a field changed after construction is checked).

        Raises :class:`~tspg.data.InputError` (a ``ValueError``) naming the field, the rule and the value.
        """
        if not isinstance(self.hidden, tuple | list) or not self.hidden or not all(
                isinstance(h, int) and not isinstance(h, bool) and h >= 1 for h in self.hidden):
            _fail(self, "hidden", "must be a non-empty sequence of layer sizes >= 1")
        _check_number(self, "lr", open_low=True)
        _check_int(self, "batch_size", 1)
        _check_int(self, "epochs", 1)
        _check_int(self, "patience", 0)
        _check_choice(self, "precision", PRECISIONS)


@dataclass
class GeneratorConfig:
    """Settings of the generator G and discriminator D, and the loss weights.

    Attributes
    ----------
    lr_generator, lr_discriminator
        Adam learning rates (paper: 2e-4 and 1e-4).
    batch_size
        Mini-batch size.
    epochs
        Maximum epochs (passes over the training part).
    min_steps_per_epoch
        On small data an epoch is stretched to at least this many mini-batch steps (drawn by cycling through
        reshuffled data), so that the number of optimiser steps, not the data size, bounds training.
    patience
        Stop when the validation score (:func:`~tspg.train.checkpoint_score`) has not clearly improved for this
        many epochs (default 10; 0 runs every epoch). A clear gain is a higher accuracy part or a validation
        energy distance lower by more than 1%; smaller gains still replace the kept weights (the prior alone only
        by a gain beyond its noise: :func:`~tspg.train.kept_row`), so the kept epoch is the best of those run by
        that rule. With the transport prior the validation energy moves by 1-4% after the first
        epochs, and the quality benchmark's held-out figures with 25 matched those of all 150 epochs within one
        seed-sd (on leukemia 1 of 15 held-out samples was no longer perturbed); the kept epoch was 0-2 on every
        set and seed, so 10 (the default since 2026-12-06) gives the same generators in less time (see "Early
        stopping" in ``docs/method.md``).
    w_gan, w_adv, w_norm, w_td
        Weights of L_GAN, L_adv, L_norm and L_td (paper: all 1). ``w_norm=None`` (the default) means
        ``1 / sqrt(n_genes)``: L_norm is a per-sample L2 norm, which grows with sqrt(genes) while the other terms
        do not, so a fixed weight of 1 lets it swamp L_adv on large gene sets (measured: at 9,020 genes no held-out
        sample was perturbed). ``w_td`` defaults to 10: with 1 the perturbed samples got no closer to the target
        class than the originals were, and held-out accuracy varied with the seed. See ``docs/method.md``.
    kappa
        Confidence margin of L_adv on the logits (paper: 0; default 5, measured in ``docs/method.md``: with 0 the
        perturbed samples sit on the decision boundary and held-out accuracy drifts below 0.95).
    target_cov
        Target distribution model: ``full``, ``diagonal`` or ``lowrank``.
    target_rank
        Components of the ``lowrank`` model.
    target_shrinkage
        For ``full``: weight of the diagonal mixed into the sample covariance.
    stop_accuracy
        Stop early once the validation perturbation accuracy has been at least this for ``stop_accuracy_epochs``
        epochs in a row (``epochs`` stays the maximum); None (the default) runs every epoch. The checkpoint is still
        the best-scoring epoch on the validation part. Off by default because later epochs keep improving realism
        (the distance to the target mean) after the accuracy has saturated; see ``docs/method.md``.
    stop_accuracy_epochs
        Epochs in a row at or above ``stop_accuracy`` before stopping.
    precision
        ``auto`` (the default), ``fp32`` or ``bf16``: ``bf16`` runs the forward passes under torch autocast in
        bfloat16 (weights, optimiser state, losses and the validation/inference passes stay fp32). It is only
        faster on CPUs with AVX512-BF16 or AMX and on GPUs; elsewhere bf16 is emulated and slower. ``auto`` is
        ``bf16`` where it is native and ``fp32`` elsewhere (:func:`tspg.train.resolve_precision`); the quality
        benchmark measured that bf16 keeps success and realism (``docs/method.md``, "Precision").
    td_loss
        The target-distribution term L_td (:data:`TD_LOSSES`): ``energy`` (the default), ``mmd`` or
        ``sinkhorn`` compare the batch of ``x_adv`` with a batch of real target training samples as two
        distributions; ``draw`` is the paper's mean L1 distance of each ``x_adv`` to its own random draw of
        N(mu_t, Sigma_t), whose minimiser is the per-gene median of the target (every sample pulled to the
        centre). See ``docs/method.md``.
    disc_real
        The discriminator's real samples: ``target`` (the default; a batch of the target's training samples, so D
        tells perturbed samples from real target samples) or ``all`` (the mini-batch of every class, as in the
        paper: D then only asks "is this any real sample").
    checkpoint
        Which epoch is kept (:func:`tspg.train.checkpoint_score`): ``realism`` (the default) or ``margin``
        (tspg 0.1's rule).
    zero_init
        Start G's output layer at zero, so that G starts as the identity map (the default); False: the
        paper's random initialisation, which starts every gene at a random perturbation.
    sinkhorn_reg
        For ``td_loss="sinkhorn"``: the entropic regularisation, as a multiple of the squared median pairwise
        distance of the target's training samples.
    td_smoothing
        Smoothing h of the real target batches of the distribution terms and of D (default 0.5; 0: the samples as
        they are): each is replaced by ``mu + sqrt(1 - h^2) (y - mu) + h sd e`` with fresh standard normal ``e``,
        which keeps the mean and per-gene variance but gives a new point at every step, so that G cannot fit its
        samples onto a few fixed target training samples. Measured in ``docs/method.md``.
    w_mean
        Weight of ``sum_c (n_c / B) |mean_c(x_adv) - mu_t|^2`` over the groups f calls the batch's samples
        (:func:`tspg.train._losses.group_mean_loss`); 0, the default: off (at 9,020 genes it swamped ``L_adv``,
        see ``docs/method.md``).
    w_ind
        Weight of ``L_ind`` (:func:`tspg.train._losses.individual_loss`): each sample's squared distance to the
        mean perturbation of the samples of its mini-batch that f calls the same class. Default 1; 0 is the
        paper's loss.
    prior
        The transport prior (:data:`PRIORS`): ``ot`` first moves each sample by the closed-form
        Gaussian optimal-transport map of its class onto the target (in a PCA space of the training part,
        :func:`tspg.train.fit_transport_prior`; the class is the nearest class centroid there), and G learns the
        perturbation of the moved sample: what the closed-form map misses (the classifier's call, non-Gaussian
        structure); the default. ``mean`` moves each sample by its class's mean shift instead; ``none`` (the paper's
        G) learns the whole perturbation. L_norm and L_ind apply to G's part only. With a prior the checkpoint rule
        also scores the prior alone (epoch 0, G = 0 with ``zero_init``). Measured in ``docs/method.md``.
    prior_shrink
        Shrinkage of the prior's mean displacement per gene (:data:`PRIOR_SHRINKS`), so that genes whose
        difference is within the sampling noise of the two class means are not moved by that noise. ``eb``:
        each gene's part of a class's mean shift is replaced by its empirical-Bayes posterior mean, under one
        prior of the genes' standardised differences fitted to all genes of the pair of classes (adaptive
        shrinkage, :func:`tspg.train.adaptive_shrink_factors`). ``js``: each gene's part is scaled by its own
        positive-part James-Stein factor ``max(0, 1 - 1/t^2)`` (``t``: the gene's Welch statistic between the
        target's and the class's training samples, :func:`tspg.train.shrink_factors`). ``none``: the plain map
        (the ``optimal_transport`` baseline). ``auto`` (the default): ``eb``. The conditional generator's
        prior shrinks each class's mean towards the mean of all class means instead of each pair's difference
        (:func:`tspg.train.shrunk_class_means`; one shrinkage per class, not per pair of classes). Measured in
        ``docs/method.md``.
    prior_covariance
        Covariance of each class's Gaussian in the ``ot`` prior (:data:`PRIOR_COVARIANCES`). ``blend``: the
        class's own Ledoit-Wolf covariance blended with the pooled within-class covariance of all classes, with
        a weight (0 to 1 in steps of 0.25) chosen per class by the cross-validated Gaussian likelihood of its
        samples (:func:`tspg.train.blend_weight`): where classes share a covariance the map is then close to
        the mean shift, not moved by the noise of two covariances estimated from a few samples each; where a
        class's covariance differs it keeps its own. ``own``: each class's own (the ``optimal_transport``
        baseline; the default before 0.5). ``auto`` (the default): ``blend`` (the conditional generator had
        ``own`` before its prior was shrunk). Measured in ``docs/method.md``.
    prior_assign
        Which class's map of the prior moves a sample (:data:`PRIOR_ASSIGNS`). ``label``: its own class wherever
        its label is known: the training and validation samples while G trains, and the samples given with
        labels to :meth:`tspg.TSPG.perturb` (``tspg run``'s held-out samples); a sample without a label, or with
        a class the model does not know, goes to the nearest class centroid in the prior's PCA space. ``nearest``:
        always the nearest centroid (the default before 0.6; on pbmc68k it picks the cell's own type for 70% of
        the cells and leaves 11% unmoved as the target's own). ``auto`` (the default): ``label``, for the
        per-target and the conditional generator (a conditional run saved when ``auto`` meant ``nearest`` for it
        keeps ``nearest``: its summary has no ``prior_assign``). Measured in ``docs/method.md``.
    prior_marginals
        Marginal maps after the prior's map (:data:`PRIOR_MARGINALS`). ``zero-inflated``: the genes where at least
        30% of the target's training samples are at the gene's lowest value (0 after scaling: dropouts of
        single-cell data) get, per class, the monotone map of the class's moved marginal onto the target's
        (:func:`tspg.train.fit_marginals`), so that moved samples have the target's share of zeros in those genes;
        genes with fewer zeros (in bulk RNA-seq or microarrays, most genes) are moved as with ``none``, the map
        alone, and so are data without such genes at all. ``auto`` (the default): ``zero-inflated`` for per-target
        generators; the conditional generator's prior has no marginal maps. Measured in ``docs/method.md``.
    prior_components
        Upper bound on the PCA components of the prior (fewer when the training part has fewer samples).
    prior_folds
        With a prior, G trains on cross-fitted displacements: each training sample moved by a prior fitted on
        the other ``prior_folds`` - 1 folds (:class:`tspg.train.CrossFittedTransport`), so that what G learns to
        add is what the map misses on a new sample. 1: the prior of the whole training part (in-sample, which
        leaves G nothing to learn where the map fits its own training samples exactly).
    prior_share_low
        With a prior, each training step moves each sample by a random share, uniform in ``[prior_share_low,
        1]``, of its (cross-fitted) displacement before G, so that G learns to finish a move the map leaves short
        (a new sample the map does not carry into the target class), not only to leave a finished one alone.
        1: always the whole displacement. Perturbing always applies the whole map.
    """

    lr_generator: float = 2e-4
    lr_discriminator: float = 1e-4
    batch_size: int = 128
    epochs: int = 150
    min_steps_per_epoch: int = 10
    patience: int = 10
    w_gan: float = 1.0
    w_adv: float = 1.0
    w_norm: float | None = None
    w_td: float = 10.0
    kappa: float = 5.0
    target_cov: str = "full"
    target_rank: int = 32
    target_shrinkage: float = 0.0
    stop_accuracy: float | None = None
    stop_accuracy_epochs: int = 10
    precision: str = "auto"
    td_loss: str = "energy"
    disc_real: str = "target"
    checkpoint: str = "realism"
    zero_init: bool = True
    sinkhorn_reg: float = 0.05
    w_ind: float = 1.0
    w_mean: float = 0.0
    td_smoothing: float = 0.5
    prior: str = "ot"
    prior_shrink: str = "auto"
    prior_covariance: str = "auto"
    prior_assign: str = "auto"
    prior_marginals: str = "auto"
    prior_components: int = 50
    prior_folds: int = 5
    prior_share_low: float = 0.5

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Check every field (also called before training, so a field changed after construction is checked).

        Raises :class:`~tspg.data.InputError` (a ``ValueError``) naming the field, the rule and the value.
        """
        for name in ("lr_generator", "lr_discriminator", "sinkhorn_reg"):
            _check_number(self, name, open_low=True)
        # batch normalisation needs at least two samples in a batch
        _check_int(self, "batch_size", 2)
        for name, low in (("epochs", 1), ("min_steps_per_epoch", 1), ("patience", 0), ("target_rank", 1),
                          ("stop_accuracy_epochs", 1), ("prior_components", 1),
                          ("prior_folds", 1)):
            _check_int(self, name, low)
        for name in ("w_gan", "w_adv", "w_td", "kappa", "w_ind", "w_mean"):
            _check_number(self, name)
        _check_number(self, "prior_share_low", 0.0, 1.0)
        _check_number(self, "w_norm", none_ok=True)
        _check_number(self, "target_shrinkage", 0.0, 1.0)
        _check_number(self, "stop_accuracy", 0.0, 1.0, none_ok=True)
        for name, allowed in (("td_loss", TD_LOSSES), ("disc_real", DISC_REAL), ("checkpoint", CHECKPOINT_RULES),
                              ("target_cov", TARGET_COV_MODELS), ("precision", PRECISIONS),
                              ("prior", PRIORS), ("prior_shrink", PRIOR_SHRINKS),
                              ("prior_covariance", PRIOR_COVARIANCES), ("prior_assign", PRIOR_ASSIGNS),
                              ("prior_marginals", PRIOR_MARGINALS)):
            _check_choice(self, name, allowed)
        if not isinstance(self.zero_init, bool):
            _fail(self, "zero_init", "must be True or False")
        if not (isinstance(self.td_smoothing, int | float) and 0.0 <= self.td_smoothing < 1.0):
            _fail(self, "td_smoothing", "must be in [0, 1)")


def assigns_by_label(config: GeneratorConfig) -> bool:
    """Whether the prior moves a sample of known label by its own class's map (``prior_assign`` auto or label)."""
    return config.prior_assign in ("auto", "label")


def prior_rules(config: GeneratorConfig) -> tuple[str, str]:
    """The prior's shrinkage and covariance in use: ``auto`` is ``eb`` and ``blend`` (per-target and conditional)."""
    return ("eb" if config.prior_shrink == "auto" else config.prior_shrink,
            "blend" if config.prior_covariance == "auto" else config.prior_covariance)


def prior_marginals(config: GeneratorConfig) -> str:
    """The per-target prior's marginal rule in use (``tspg.train._prior.MARGINALS``): ``auto`` is ``zero-inflated``."""
    return "zero-inflated" if config.prior_marginals == "auto" else config.prior_marginals


def resolved_w_norm(config: GeneratorConfig, n_genes: int) -> float:
    """The weight of L_norm in use: ``config.w_norm``, or ``1 / sqrt(n_genes)`` when it is None."""
    return float(config.w_norm) if config.w_norm is not None else 1.0 / float(n_genes) ** 0.5


def config_to_dict(config: ClassifierConfig | GeneratorConfig) -> dict:
    """A JSON-ready dict of a config (tuples become lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}


#: Values of fields that manifests written before the field existed ran with, where the default has changed
#: since (``precision`` was ``fp32`` before ``auto`` became the default, ``prior_covariance`` ``own`` and
#: ``prior_assign`` ``nearest`` before ``auto``, ``prior_marginals`` ``none`` before the marginal maps).
BEFORE_THE_FIELD = {"precision": "fp32", "prior_covariance": "own", "prior_assign": "nearest",
                    "prior_marginals": "none"}


def config_from_dict(cls: type, data: dict) -> ClassifierConfig | GeneratorConfig:
    """Rebuild a config from :func:`config_to_dict` output, ignoring unknown keys.

    A field the dictionary lacks gets its :data:`BEFORE_THE_FIELD` value where it has one, else its default.
    """
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in BEFORE_THE_FIELD.items() if k in names}
    kwargs.update({k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})
    return cls(**kwargs)
