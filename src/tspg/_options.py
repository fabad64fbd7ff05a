"""Names of tspg's options, in one module without heavy imports (the CLI reads them for --help).

Every registry of names lives here once; the modules that implement the options and the CLI's choices read them.
"""

from typing import Literal

#: Missing-value policies of :func:`tspg.data.load_dataset` and :class:`tspg.TSPG`.
Impute = Literal["none", "zero", "mean", "median", "drop-genes"]
IMPUTE_METHODS: tuple[str, ...] = ("none", "zero", "mean", "median", "drop-genes")
#: Expression transforms before scaling (:class:`tspg.TSPG` ``transform``; :func:`tspg.data.apply_transform`):
#: none, log2(x + 1), ln(x + 1).
TRANSFORMS: tuple[str, ...] = ("none", "log2p1", "log1p")
#: Which GCT column names the genes (:func:`tspg.data.read_gem` ``gene_id_column``): GCT's ``Name`` (e.g. GTEx's
#: versioned Ensembl IDs) or ``Description`` (e.g. GTEx's symbols).
GENE_ID_COLUMNS: tuple[str, ...] = ("Name", "Description")
#: Models of the target class distribution (``GeneratorConfig.target_cov``; :class:`tspg.train.TargetSampler`).
TargetCov = Literal["full", "diagonal", "lowrank"]
TARGET_COV_MODELS: tuple[str, ...] = ("full", "diagonal", "lowrank")
#: Arithmetic of training (``precision`` of both configs).
Precision = Literal["auto", "fp32", "bf16"]
PRECISIONS: tuple[str, ...] = ("auto", "fp32", "bf16")

#: How perturbed samples are placed in a t-SNE map (:func:`tspg.tl.tsne_map`).
TsneMode = Literal["project", "joint"]
TSNE_MODES: tuple[str, ...] = ("project", "joint")
#: Units in which perturbations are ranked for the top genes (:func:`tspg.workflow._run.genes_phase`).
RANK_UNITS: tuple[str, ...] = ("expr", "scaled")
#: Which of the run's own samples ``tspg run``/``perturb`` perturbs.
PERTURB_WHICH: tuple[str, ...] = ("test", "all")
#: Generators of a run: one per target (the paper's), or one conditional on the target for every target.
GENERATOR_KINDS: tuple[str, ...] = ("per-target", "conditional")
#: The generator's output layer at start: ``zero`` (``GeneratorConfig.zero_init=True``) or ``random``.
G_INITS: tuple[str, ...] = ("zero", "random")

#: Target-distribution terms of G's loss (``GeneratorConfig.td_loss``).
TD_LOSSES: tuple[str, ...] = ("energy", "mmd", "sinkhorn", "draw")
#: Transport priors of the generator (``GeneratorConfig.prior``): Gaussian optimal transport, class-mean shift, none.
PRIORS: tuple[str, ...] = ("ot", "mean", "none")
#: Shrinkage of the prior's mean displacement per gene (``GeneratorConfig.prior_shrink``): ``auto`` is ``eb``
#: (empirical Bayes over genes; the conditional generator shrinks each class's mean, and had ``none`` before).
PRIOR_SHRINKS: tuple[str, ...] = ("auto", "eb", "js", "none")
#: Covariances of the OT prior's class Gaussians (``GeneratorConfig.prior_covariance``): ``auto`` is ``blend`` (each
#: class's own blended with the pooled within-class covariance, weight by cross-validated likelihood) for
#: per-target and conditional generators (the conditional one had ``own``, each class's own, before its prior
#: was shrunk).
PRIOR_COVARIANCES: tuple[str, ...] = ("auto", "blend", "own")
#: Which class's map of the prior moves a sample (``GeneratorConfig.prior_assign``): ``label``, its own class where
#: its label is known (training, validation, and perturbed samples given with labels), else the nearest class
#: centroid; ``nearest``, always the nearest centroid. ``auto`` is ``label`` (per-target and conditional
#: generators; the conditional one used ``nearest`` before 2026-12-06's second change).
PRIOR_ASSIGNS: tuple[str, ...] = ("auto", "label", "nearest")
#: Marginal maps of the prior (``GeneratorConfig.prior_marginals``): ``zero-inflated``, each class's marginal of
#: the target's zero-inflated genes mapped onto the target's after the map (per-target generators); ``none``, the
#: map alone. ``auto`` is ``zero-inflated`` for per-target generators and ``none`` for the conditional one.
PRIOR_MARGINALS: tuple[str, ...] = ("auto", "zero-inflated", "none")
#: Where the discriminator's real samples come from (``GeneratorConfig.disc_real``).
DISC_REAL: tuple[str, ...] = ("target", "all")
#: Rules that choose the kept epoch (``GeneratorConfig.checkpoint``).
CHECKPOINT_RULES: tuple[str, ...] = ("realism", "margin")
#: The paper's generator loss (section 2.2: every weight 1, no margin, the L1 distance to one draw of the target
#: distribution per sample, a discriminator on every class, randomly initialised layers) as ``GeneratorConfig``
#: fields: the CLI's ``--paper-loss`` (no ``L_ind``). The paper names no checkpoint rule; tspg 0.1's ``margin`` rule
#: is used.
PAPER_LOSS: dict = {"td_loss": "draw", "disc_real": "all", "checkpoint": "margin", "zero_init": False,
                    "w_gan": 1.0, "w_adv": 1.0, "w_norm": 1.0, "w_td": 1.0, "w_ind": 0.0, "kappa": 0.0,
                    "td_smoothing": 0.0, "prior": "none", "patience": 0}
