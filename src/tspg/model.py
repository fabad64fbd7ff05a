"""The user-facing TSPG object: fit a classifier and per-target generators, perturb, save and load.

It is thin: reading data lives in :mod:`tspg.data`, networks in :mod:`tspg.nn`, training in :mod:`tspg.train`.
"""

from __future__ import annotations

import json
import logging
import platform
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from tspg import __version__
from tspg._io import atomic_write, write_json
from tspg._names import (
    CLASSIFIER_WEIGHTS,
    CONDITIONAL_WEIGHTS,
    GENERATOR_WEIGHTS,
    MANIFEST,
    check_target_dirs,
    target_dirname,
)
from tspg._options import GENERATOR_KINDS, IMPUTE_METHODS
from tspg._settings import settings
from tspg.data import (
    TRANSFORM_UNITS,
    Dataset,
    InputError,
    MinMaxScaler,
    apply_transform,
    check_split_sizes,
    check_targets,
    check_transform,
    file_sha256,
    fill_missing,
    in_gene_order,
    looks_like_counts,
    prepare,
    share_called_target,
    stratified_split,
)
from tspg.nn import (
    MARGINAL_LEVELS,
    Classifier,
    ConditionalGenerator,
    ConditionalPrior,
    Generator,
    TargetView,
    TransportPrior,
    seeded,
)
from tspg.train import (
    ClassifierConfig,
    GeneratorConfig,
    config_from_dict,
    config_to_dict,
    fit_classifier,
    fit_generator,
    generate,
    kept_row,
    new_adversary,
    predict_logits,
    resolve_device,
    resolve_precision,
)
from tspg.train._config import assigns_by_label, prior_rules

log = logging.getLogger(__name__)

# 2: the classifier file holds its input centre ("center"); version 1 folders load with a zero centre.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

#: Keys every manifest has, and their JSON types.
MANIFEST_KEYS: dict[str, type | tuple[type, ...]] = {"seed": int, "config": dict, "classes": list, "genes": list,
                                                     "scaler": dict, "split": dict, "targets": dict}


def read_manifest(folder: str | Path) -> dict:
    """The manifest of a run folder, checked: the one reader of ``manifest.json`` (used by :meth:`TSPG.load`).

    Parameters
    ----------
    folder
        A run folder.

    Returns
    -------
    The manifest as a dict; :class:`~tspg.data.InputError` with one line when the file is missing, truncated,
    not valid JSON, of another format or version, or lacks a key (:data:`MANIFEST_KEYS`).
    """
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder}: no {MANIFEST}; this is not a tspg run folder (run 'tspg run' or "
                         "'tspg train-classifier' first).")
    try:
        m = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not valid JSON ({str(exc).splitlines()[0][:120]}); the file is damaged or "
                         "truncated; re-create the run with 'tspg run'.") from None
    if not isinstance(m, dict) or m.get("format") != "tspg-run":
        raise InputError(f"{path}: not a tspg run manifest.")
    if m.get("format_version") not in READABLE_VERSIONS:
        raise InputError(f"{path}: run format version {m.get('format_version')} is not one this tspg "
                         f"({__version__}) reads ({', '.join(map(str, READABLE_VERSIONS))}); use the tspg version "
                         "that made it.")
    for key, kind in MANIFEST_KEYS.items():
        if not isinstance(m.get(key), kind):
            problem = "lacks" if key not in m else "has a malformed"
            raise InputError(f"{path} {problem} '{key}'; the run folder is incomplete or damaged; re-create it "
                             "with 'tspg run'.")
    if not all(isinstance(info, dict) and isinstance(info.get("dir"), str) for info in m["targets"].values()):
        raise InputError(f"{path} has a malformed 'targets'; re-create the run with 'tspg run'.")
    return m


#: The name whose :meth:`TSPG.target_seed` seeds the conditional generator (no class name can be it: it is empty).
CONDITIONAL_KEY = ""


def _save_module(module: torch.nn.Module, path: Path) -> str:
    """Write ``module``'s weights as safetensors (atomically); return the file's SHA-256 for the manifest."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    # one metadata key only: safetensors writes a metadata map in hash order, which varies between processes
    atomic_write(path, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    return file_sha256(path)


def _load_module(module: torch.nn.Module, path: Path, fix: str, sha256: str | None = None) -> torch.nn.Module:
    """Load weights into ``module``; a missing, damaged or mismatched file is one :class:`InputError` naming ``fix``.

    With ``sha256`` (the manifest's digest of the file) a file changed since it was written is named as damaged
    before it is parsed.
    """
    from safetensors.torch import load_file

    if not path.is_file():
        raise InputError(f"{path}: model weights are missing; {fix}.")
    if sha256 is not None and file_sha256(path) != sha256:
        raise InputError(f"{path} is damaged: its SHA-256 differs from the one the manifest recorded when it was "
                         f"written; {fix}.")
    try:
        state = load_file(str(path))
    except Exception as exc:  # noqa: BLE001 (safetensors raises its own SafetensorError, OSError and others)
        raise InputError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0][:100]}); {fix}.") \
            from None
    if isinstance(module, Classifier) and "center" not in state:
        # written before the classifier centred its input (tspg 0.1.0 development versions): no centring
        state["center"] = torch.zeros_like(module.center)
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        wrong = sorted(set(expected) ^ set(found)) or [k for k in expected if expected[k] != found[k]]
        raise InputError(f"{path} does not match the manifest's model (e.g. '{wrong[0]}': expected "
                         f"{expected.get(wrong[0])}, found {found.get(wrong[0])}); {fix}.")
    module.load_state_dict(state)
    return module.eval()


@dataclass
class Perturbation:
    """Perturbations of a set of samples towards one target class.

    Attributes
    ----------
    target
        The target class.
    samples
        Sample names.
    labels
        The samples' classes where known (else NA).
    x_scaled, x_adv_scaled
        Input and perturbed samples in scaled units ([0, 1] on the training data).
    scaler
        The run's scaler, to express everything in original units.
    classes
        The classifier's class names (index order of the probabilities).
    proba_before, proba_after
        Class probabilities of f before and after the perturbation.
    part
        ``train``/``val``/``test`` per sample for the run's own samples, ``external`` for others.
    """

    target: str
    samples: list[str]
    labels: pd.Series
    x_scaled: np.ndarray
    x_adv_scaled: np.ndarray
    scaler: MinMaxScaler
    genes: list[str]
    classes: list[str]
    proba_before: np.ndarray
    proba_after: np.ndarray
    part: list[str] = field(default_factory=list)

    def _frame(self, values: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(values, index=pd.Index(self.samples, name="sample"), columns=self.genes)

    @property
    def perturbation_scaled(self) -> pd.DataFrame:
        """``x_adv - x`` in scaled units."""
        return self._frame(self.x_adv_scaled - self.x_scaled)

    @property
    def perturbation_expr(self) -> pd.DataFrame:
        """``x_adv - x`` in original expression units."""
        return self._frame(self.scaler.inverse_transform_delta(self.x_adv_scaled - self.x_scaled))

    @property
    def perturbed_scaled(self) -> pd.DataFrame:
        """``x_adv`` in scaled units."""
        return self._frame(self.x_adv_scaled)

    @property
    def perturbed_expr(self) -> pd.DataFrame:
        """``x_adv`` in original expression units."""
        return self._frame(self.scaler.inverse_transform(self.x_adv_scaled))

    @property
    def predictions(self) -> pd.DataFrame:
        """Per sample: label, part, f's class before and after, and the target's probability before and after."""
        t = self.classes.index(self.target)
        cls = np.asarray(self.classes, dtype=object)
        return pd.DataFrame(
            {
                "label": self.labels.reindex(self.samples).to_numpy(),
                "part": self.part or ["external"] * len(self.samples),
                "predicted_before": cls[self.proba_before.argmax(1)] if len(self.samples) else [],
                "predicted_after": cls[self.proba_after.argmax(1)] if len(self.samples) else [],
                "prob_target_before": self.proba_before[:, t],
                "prob_target_after": self.proba_after[:, t],
            },
            index=pd.Index(self.samples, name="sample"),
        )

    def metrics(self) -> dict:
        """Perturbation accuracy overall and per source class (see the output contract in the README).

        ``perturbation_accuracy`` is the share of the samples f did not already call the target that it calls the
        target after the perturbation (None when every sample was the target already);
        ``perturbation_accuracy_all`` the share of every sample (:func:`tspg.data.share_called_target`).
        """
        t = self.classes.index(self.target)
        before = self.proba_before.argmax(1)
        after = self.proba_after.argmax(1)

        def shares(mask: np.ndarray) -> dict:
            acc, acc_all, n_fresh = share_called_target(before[mask], after[mask], t)
            return {"n_not_already_target": n_fresh,
                    "perturbation_accuracy": round(acc, 6) if n_fresh else None,
                    "perturbation_accuracy_all": round(acc_all, 6) if mask.any() else None}

        by_source = {}
        labels = self.labels.reindex(self.samples)
        if labels.notna().any():
            for cls in sorted(labels.dropna().unique()):
                m = (labels == cls).to_numpy()
                by_source[cls] = {"n": int(m.sum()), **shares(m)}
        overall = shares(np.ones(len(after), dtype=bool))
        p = self.x_adv_scaled - self.x_scaled
        return {
            "target": self.target,
            "perturbation_accuracy": overall["perturbation_accuracy"],
            "perturbation_accuracy_all": overall["perturbation_accuracy_all"],
            "n_perturbed": len(self.samples),
            "n_not_already_target": overall["n_not_already_target"],
            "mean_abs_perturbation_scaled": round(float(np.abs(p).mean()), 6) if p.size else None,
            "mean_l2_perturbation_scaled": round(float(np.linalg.norm(p, axis=1).mean()), 6) if p.size else None,
            "by_source": by_source,
        }


class TSPG:
    """Transcriptome State Perturbation Generator.

    Fits a classifier f on a labelled GEM, then for each target class a generator G that perturbs any sample so
    that f calls it the target while a discriminator and a target-distribution loss keep it realistic.

    Parameters
    ----------
    classifier_config, generator_config
        Training settings (paper defaults).
    seed
        Seeds the split, the weights, batch order and target draws (default: ``tspg.settings.seed``). Every draw
        comes from generators of tspg's own; the global random state of torch and NumPy is left as it is.
    test_size, val_size
        Held-out share per class, and the validation share of the rest (early stopping, checkpoints).
    impute
        Missing-value policy used when the data were loaded (``none``, ``zero``, ``mean``, ``median``,
        ``drop-genes``).
    transform
        Applied to every sample the model sees before it is scaled (:data:`tspg.data.TRANSFORMS`): ``none``
        (the default), ``log2p1`` (``log2(x + 1)``) or ``log1p`` (``ln(x + 1)``), for linear counts or
        intensities. Recorded in the run folder and applied to every later input (:meth:`scale`, :meth:`perturb`);
        expression-unit outputs (``perturbation_expr``, ``perturbed_expr``, the genes' deltas) are in the
        transformed units (:data:`tspg.data.TRANSFORM_UNITS`). Without one, :meth:`fit_classifier` warns when
        the data look like counts (:func:`tspg.data.looks_like_counts`).
    device
        Torch device for training and inference: ``auto`` (a CUDA device when present, else the CPU), ``cpu``,
        ``cuda`` or ``cuda:N``.
    progress
        Show progress bars.

    Examples
    --------
    >>> from tspg import TSPG
    >>> from tspg.data import make_atlas, Dataset
    >>> atlas = make_atlas(n_classes=3, n_genes=120, samples_per_class=30, seed=1)
    >>> ds = Dataset(atlas.gem, atlas.labels)
    >>> model = TSPG(ClassifierConfig(epochs=5), GeneratorConfig(epochs=2), progress=False)  # doctest: +SKIP
    >>> model.fit(ds, targets=["Liver"]).perturb(ds.gem, "Liver").metrics()["n_perturbed"]  # doctest: +SKIP
    90
    """

    def __init__(
        self,
        classifier_config: ClassifierConfig | None = None,
        generator_config: GeneratorConfig | None = None,
        *,
        seed: int | None = None,
        test_size: float = 0.2,
        val_size: float = 0.1,
        impute: str = "none",
        transform: str = "none",
        device: str = "auto",
        progress: bool = True,
    ) -> None:
        self.classifier_config = classifier_config or ClassifierConfig()
        self.generator_config = generator_config or GeneratorConfig()
        if seed is None:
            seed = settings.seed
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**31:
            raise InputError(f"`seed` must be an integer in [0, 2**31), not {seed!r}.")
        check_split_sizes(test_size, val_size)
        if impute not in IMPUTE_METHODS:
            raise InputError(f"Unknown `impute` '{impute}'; choose one of {', '.join(IMPUTE_METHODS)}.")
        self.seed = seed
        self.test_size = test_size
        self.val_size = val_size
        self.impute = impute
        check_transform(transform)
        self.transform = transform
        self.device = str(resolve_device(device))
        self.progress = progress
        self.genes: list[str] = []
        self.classes: list[str] = []
        self.scaler: MinMaxScaler | None = None
        self.fill: np.ndarray | None = None
        self.split: pd.Series | None = None
        self.classifier: Classifier | None = None
        self.generators: dict[str, Generator | TargetView] = {}
        #: The conditional generator (``fit_conditional``) and the targets it serves, in its order.
        self.conditional: ConditionalGenerator | None = None
        self.conditional_targets: list[str] = []
        self.generator_histories: dict[str, list[dict]] = {}
        self.generator_configs: dict[str, GeneratorConfig] = {}
        self.generator_summaries: dict[str, dict] = {}
        self.classifier_history: list[dict] = []
        self.inputs: dict = {}
        self.gene_set_report: dict = {}

    # ---------------------------------------------------------------- fitting
    def fit_classifier(self, dataset: Dataset) -> TSPG:
        """Split ``dataset`` (stratified, seeded), fit the scaler on the training part and train f.

        Parameters
        ----------
        dataset
            A validated :class:`tspg.data.Dataset`.

        Returns
        -------
        self
        """
        self.genes = list(dataset.gem.columns)
        self.classes = dataset.classes
        self.inputs = dict(dataset.sources)
        self.gene_set_report = {k: {kk: vv for kk, vv in v.items()} for k, v in dataset.gene_set_report.items()}
        self.classifier_config.validate()
        self.split = stratified_split(dataset.labels, test_size=self.test_size, val_size=self.val_size,
                                      seed=self.seed)
        if self.transform == "none":
            counts, why = looks_like_counts(dataset.gem.to_numpy())
            if counts:
                log.warning("the data look like linear counts (%s): pass --transform log2p1 (API: "
                            "TSPG(transform='log2p1')) to train on log2(x + 1), or ignore this if they are not",
                            why)
        prep = prepare(dataset, self.classes, self.split, self.impute, transform=self.transform)
        self.scaler, self.fill = prep.scaler, prep.fill
        tr, va = prep.part == "train", prep.part == "val"
        n_parts = pd.Series(prep.part).value_counts().to_dict()
        log.info("split: %s samples train / %s val / %s test; %d genes; %d classes", n_parts.get("train", 0),
                 n_parts.get("val", 0), n_parts.get("test", 0), len(self.genes), len(self.classes))
        with seeded(self.seed):
            classifier = Classifier(len(self.genes), len(self.classes), tuple(self.classifier_config.hidden))
        self.classifier, self.classifier_history = fit_classifier(
            prep.x[tr], prep.y[tr], prep.x[va], prep.y[va], len(self.classes), self.classifier_config,
            seed=self.seed, device=self.device, progress=self.progress, classifier=classifier,
        )
        self.generators.clear()
        return self

    def target_seed(self, target: str) -> int:
        """The seed of a target's generator: fixed by the run seed and the target's name, not target order."""
        return (self.seed * 1_000_003 + zlib.crc32(target.encode())) % (2**31)

    def fit_generator(self, dataset: Dataset, target: str) -> TSPG:
        """Train the generator that perturbs samples towards ``target`` (the classifier must be fitted).

        Parameters
        ----------
        dataset
            The same samples and labels the classifier was fitted on; its genes are matched to the model's by
            name (:func:`tspg.data.match_genes`), so their column order does not matter.
        target
            A class name. Its folder name in a saved run (:func:`tspg._names.target_dirname`) must differ from
            those of the model's other targets.

        Returns
        -------
        self
        """
        if self.classifier is None:
            raise RuntimeError("fit_classifier first")
        check_targets([target], self.classes)
        check_target_dirs([*self.generators, target])
        self.generator_config.validate()
        prep = prepare(dataset, self.classes, self.split, self.impute, scaler=self.scaler, fill=self.fill,
                       genes=self.genes, transform=self.transform)
        t = self.classes.index(target)
        tr, va = prep.part == "train", prep.part == "val"
        log.info("generator for target '%s': %d training samples, %d of the target class", target, int(tr.sum()),
                 int((tr & (prep.y == t)).sum()))
        seed = self.target_seed(target)
        generator, discriminator = new_adversary(len(self.genes), self.generator_config, seed)
        x_train, x_target, x_val, y_train = prep.x[tr], prep.x[tr & (prep.y == t)], prep.x[va], prep.y[tr]
        x_target_val, y_val = prep.x[va & (prep.y == t)], prep.y[va]
        del prep  # the whole scaled matrix: only its training and validation rows are needed from here on
        gen, hist = fit_generator(
            self.classifier, x_train, x_target, t, x_val, self.generator_config,
            seed=seed, device=self.device, progress=self.progress, desc=f"generator {target}",
            generator=generator, discriminator=discriminator, y_train=y_train, x_target_val=x_target_val,
            y_val=y_val,
        )
        self.generators[target] = gen
        self.generator_histories[target] = hist
        best = kept_row(hist, self.generator_config.checkpoint)
        self.generator_summaries[target] = {
            "epochs_trained": hist[-1]["epoch"], "best_epoch": best["epoch"],
            "val_perturbation_accuracy": round(best["val_accuracy"], 6), "val_margin": round(best["val_margin"], 6),
            "val_energy": round(best["val_energy"], 6),
            "precision": resolve_precision(self.generator_config.precision, self.device),
        }
        if gen.prior is not None:  # the prior's size, so that load() rebuilds the same module
            self.generator_summaries[target]["prior_components"] = int(gen.prior.components.shape[0])
            if gen.prior.marginal_genes is not None:  # zero-inflated genes with marginal maps, and their levels
                self.generator_summaries[target]["prior_marginal_genes"] = int(gen.prior.marginal_source.shape[2])
                self.generator_summaries[target]["prior_marginal_levels"] = int(gen.prior.marginal_source.shape[1])
        self.generator_configs[target] = GeneratorConfig(**config_to_dict(self.generator_config))
        return self

    def fit_conditional(self, dataset: Dataset, targets: list[str] | str) -> TSPG:
        """Train ONE generator G(x, t) for every target in ``targets`` (the classifier must be fitted).

        Each target then has a generator (a :class:`tspg.nn.TargetView` of the conditional one) that every
        method of the model uses as a per-target generator's; see ``docs/method.md``, "The conditional generator".
        It replaces these targets' generators (others are kept); the generator settings must have ``td_loss``
        energy or mmd, ``disc_real`` target and ``w_mean`` 0.

        Parameters
        ----------
        dataset
            The samples and labels the classifier was fitted on.
        targets
            Target class names, or ``"all"``.

        Returns
        -------
        self
        """
        from tspg.data import resolve_targets
        from tspg.train import check_conditional_config, fit_conditional_generator

        if self.classifier is None:
            raise RuntimeError("fit_classifier first")
        targets = resolve_targets([targets] if isinstance(targets, str) else targets, self.classes)
        check_targets(targets, self.classes)
        check_target_dirs(list(dict.fromkeys([*self.generators, *targets])))
        cfg = self.generator_config
        cfg.validate()
        check_conditional_config(cfg)
        prep = prepare(dataset, self.classes, self.split, self.impute, scaler=self.scaler, fill=self.fill,
                       genes=self.genes, transform=self.transform)
        tr, va = prep.part == "train", prep.part == "val"
        x_train, y_train, x_val, y_val = prep.x[tr], prep.y[tr], prep.x[va], prep.y[va]
        del prep
        log.info("conditional generator for %d target(s): %d training samples", len(targets), len(x_train))
        index = [self.classes.index(t) for t in targets]
        cond, hist = fit_conditional_generator(self.classifier, x_train, y_train, index, x_val, cfg,
                                               seed=self.target_seed(CONDITIONAL_KEY), device=self.device,
                                               progress=self.progress,
                                               desc=f"conditional generator ({len(targets)} targets)", y_val=y_val,
                                               class_names=list(self.classes))
        # targets served by an earlier conditional generator and not retrained now get per-target ones or nothing
        for t in self.conditional_targets:
            if t not in targets and isinstance(self.generators.get(t), TargetView):
                del self.generators[t]
        self.conditional, self.conditional_targets = cond, list(targets)
        best = kept_row(hist, cfg.checkpoint)
        summary = {"generator": "conditional", "n_targets": len(targets), "epochs_trained": hist[-1]["epoch"],
                   "best_epoch": best["epoch"], "val_perturbation_accuracy": round(best["val_accuracy"], 6),
                   "val_margin": round(best["val_margin"], 6), "val_energy": round(best["val_energy"], 6)}
        if cond.prior is not None:
            summary["prior_components"] = int(cond.prior.components.shape[0])
            # the rule it trained with: a conditional run written before labels reached its prior has no entry
            summary["prior_assign"] = "nearest" if cfg.prior_assign == "nearest" else "label"
            # and its shrinkage and covariance (a run written before the conditional prior was shrunk has no
            # entries: none and own)
            summary["prior_shrink"], covariance = prior_rules(cfg)
            if cfg.prior == "ot":
                summary["prior_covariance"] = covariance
        for i, t in enumerate(targets):
            self.generators[t] = TargetView(cond, i)
            self.generator_histories[t] = hist
            self.generator_summaries[t] = dict(summary)
            self.generator_configs[t] = GeneratorConfig(**config_to_dict(cfg))
        return self

    def fit(self, dataset: Dataset, targets: list[str] | str, generator: str = "per-target") -> TSPG:
        """Fit the classifier, then one generator per target (or one conditional generator for them all).

        Parameters
        ----------
        dataset
            A validated :class:`tspg.data.Dataset`.
        targets
            Target class names, or one name; ``"all"`` stands for every class (:func:`tspg.data.resolve_targets`).
        generator
            ``per-target`` (one generator per target, the paper's) or ``conditional`` (:meth:`fit_conditional`).

        Returns
        -------
        self
        """
        from tspg.data import resolve_targets

        if generator not in GENERATOR_KINDS:
            raise InputError(f"`generator` must be one of {', '.join(GENERATOR_KINDS)}, not {generator!r}.")
        targets = resolve_targets([targets] if isinstance(targets, str) else targets, dataset.classes)
        dataset.check_targets(targets)
        check_target_dirs(list(targets))
        self.fit_classifier(dataset)
        if generator == "conditional":
            return self.fit_conditional(dataset, targets)
        for t in targets:
            self.fit_generator(dataset, t)
        return self

    # ---------------------------------------------------------------- inference
    def scale(self, gem: pd.DataFrame, source: str = "the data") -> np.ndarray:
        """``gem`` (samples x genes, original units) in the model's scaled units, genes in the model's order.

        Genes are matched by name (:func:`tspg.data.match_genes`: any column order, extra genes ignored, Ensembl
        version suffixes ignored where needed); the model's :attr:`transform` is applied; missing values are
        filled as the run was trained to.

        Parameters
        ----------
        gem
            The samples to scale.
        source
            Name of the data, for error messages.

        Returns
        -------
        A float32 array (samples x the model's genes).
        """
        if self.scaler is None:
            raise RuntimeError("fit_classifier (or TSPG.load) first")
        values = in_gene_order(gem, self.genes, source).to_numpy(dtype=np.float32)
        values = apply_transform(values, self.transform, source)
        if not np.isfinite(values).all():
            if self.fill is None or np.isnan(self.fill).all():
                raise InputError(f"{source} has missing or infinite values and this run was trained without "
                                 "imputation; fill them first.")
            values = fill_missing(values, self.fill)
        return self.scaler.transform(values)

    def predict_proba(self, gem: pd.DataFrame) -> pd.DataFrame:
        """Class probabilities of f for each sample of ``gem`` (original units, samples x genes)."""
        x = self.scale(gem)
        proba = torch.softmax(predict_logits(self.classifier, x, device=self.device), 1).numpy()
        return pd.DataFrame(proba, index=gem.index, columns=self.classes)

    def perturb(self, gem: pd.DataFrame, target: str, labels: pd.Series | None = None,
                source: str = "the data", external: bool = False) -> Perturbation:
        """Perturb every sample of ``gem`` towards ``target``.

        Parameters
        ----------
        gem
            Samples x genes in original units; it must contain the model's genes (extra genes are ignored).
        target
            A class with a trained generator.
        labels
            Optional true classes of the samples: per-source metrics, and with a transport prior and
            ``prior_assign`` ``label`` (the default) each labelled sample moves by its own class's map (a sample
            without a label, or whose label is not one of the model's classes, by the nearest centroid's; a
            conditional generator saved before it trained with labels keeps the nearest centroid's for all).
        source
            Name of the data, for error messages.
        external
            The samples are not the run's own (their ``part`` is ``external`` even where names coincide).

        Returns
        -------
        The :class:`Perturbation`.
        """
        if target not in self.generators:
            trained = ", ".join(self.generators) or "none"
            raise InputError(f"No generator for target '{target}' in this run; trained targets: {trained}.")
        x = self.scale(gem, source)
        generator = self.generators[target]
        config = self.generator_configs.get(target, self.generator_config)
        classes = None
        if labels is not None and generator.prior is not None and self._assigns_by_label(target, config):
            index = {c: i for i, c in enumerate(self.classes)}
            classes = np.array([index.get(str(v), -1) if pd.notna(v) else -1 for v in labels.reindex(gem.index)],
                               dtype=np.int64)
        x_adv, _ = generate(generator, x, device=self.device, classes=classes)
        before = torch.softmax(predict_logits(self.classifier, x, device=self.device), 1).numpy()
        after = torch.softmax(predict_logits(self.classifier, x_adv, device=self.device), 1).numpy()
        samples = [str(s) for s in gem.index]
        if not external and self.split is not None and set(samples) <= set(self.split.index):
            part = [str(p) for p in self.split.reindex(samples)]
        else:
            part = ["external"] * len(samples)
        lab = labels.reindex(samples) if labels is not None else pd.Series(pd.NA, index=samples, dtype=object)
        return Perturbation(target, samples, lab, x, x_adv, self.scaler, list(self.genes), list(self.classes),
                            before, after, part)

    def _assigns_by_label(self, target: str, config: GeneratorConfig) -> bool:
        """Whether the prior of ``target``'s generator moves a labelled sample by its own class's map.

        ``prior_assign`` ``label`` or ``auto``; a conditional generator also needs its training to have used the
        labels (``prior_assign`` in its summary: runs written before that read as ``nearest``).
        """
        if not assigns_by_label(config):
            return False
        if isinstance(self.generators[target], TargetView):
            return self.generator_summaries.get(target, {}).get("prior_assign") == "label"
        return True

    def classifier_metrics(self, dataset: Dataset) -> dict:
        """Accuracy of f on the held-out (test) part, overall and per class, and the confusion matrix."""
        test = self.split[self.split == "test"].index
        proba = self.predict_proba(dataset.gem.loc[test])
        pred = proba.idxmax(axis=1)
        truth = dataset.labels.loc[test]
        per_class = {c: round(float((pred[truth == c] == c).mean()), 6) for c in self.classes}
        confusion = pd.crosstab(truth, pred).reindex(index=self.classes, columns=self.classes, fill_value=0)
        kept = [r for r in self.classifier_history if r.get("kept")]
        best = kept[-1] if kept else None
        return {
            "accuracy": round(float((pred == truth).mean()), 6),
            "n_test": int(len(test)),
            "per_class_accuracy": per_class,
            "confusion": {"classes": self.classes, "matrix": confusion.to_numpy().tolist()},
            "val_accuracy": round(best["val_accuracy"], 6) if best else None,
            "epochs_trained": len(self.classifier_history),
            "best_epoch": best["epoch"] if best else len(self.classifier_history),
        }

    # ---------------------------------------------------------------- persistence
    def settings(self) -> dict:
        """The seed and the settings of this model as the manifest records them (``seed``, ``config``)."""
        return {"seed": self.seed, "config": {
            "classifier": config_to_dict(self.classifier_config), "generator": config_to_dict(self.generator_config),
            "test_size": self.test_size, "val_size": self.val_size, "impute": self.impute,
            "transform": self.transform}}

    def manifest(self) -> dict:
        """Everything besides the weights that rebuilds this model, as JSON-ready data."""
        import numpy
        import pandas

        split = self.split
        return {
            "format": "tspg-run",
            "format_version": FORMAT_VERSION,
            "tspg_version": __version__,
            "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                         "pandas": pandas.__version__},
            **self.settings(),
            "inputs": self.inputs,
            "gene_sets": self.gene_set_report,
            "classes": self.classes,
            "genes": self.genes,
            "expression_units": TRANSFORM_UNITS[self.transform],
            "scaler": {"kind": "minmax", "min": self.scaler.data_min.tolist(),
                       "range": self.scaler.data_range.tolist()},
            "fill": None if self.fill is None or np.isnan(self.fill).all() else self.fill.tolist(),
            "split": {p: [str(s) for s in split.index[split == p]] for p in ("train", "val", "test")},
            "split_order": [str(s) for s in split.index],
            "targets": {
                t: {"dir": target_dirname(t), "seed": self.target_seed(t),
                    "generator": "conditional" if isinstance(self.generators[t], TargetView) else "per-target",
                    "config": config_to_dict(self.generator_configs.get(t, self.generator_config)),
                    "training": self.generator_summaries.get(t, {})}
                for t in sorted(self.generators)
            },
        }

    def save(self, folder: str | Path) -> Path:
        """Write ``manifest.json``, ``classifier.safetensors`` and ``<target>/generator.safetensors``.

        Weights are safetensors (no pickle); the manifest is JSON and records each weights file's SHA-256, so that
        :meth:`load` names a damaged file as damaged. Every file is written atomically, the manifest last.
        """
        if self.classifier is None:
            raise RuntimeError("nothing to save: fit_classifier first")
        check_target_dirs(list(self.generators))
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        manifest = self.manifest()
        manifest["classifier_sha256"] = _save_module(self.classifier, folder / CLASSIFIER_WEIGHTS)
        for t, gen in self.generators.items():
            if isinstance(gen, TargetView):  # its weights are the conditional generator's, written once below
                (folder / target_dirname(t) / GENERATOR_WEIGHTS).unlink(missing_ok=True)
                continue
            manifest["targets"][t]["sha256"] = _save_module(gen, folder / target_dirname(t) / GENERATOR_WEIGHTS)
        served = [t for t in self.conditional_targets if isinstance(self.generators.get(t), TargetView)]
        if self.conditional is not None and served:
            prior = self.conditional.prior
            manifest["conditional"] = {
                "targets": self.conditional_targets, "seed": self.target_seed(CONDITIONAL_KEY),
                "prior_components": None if prior is None else int(prior.components.shape[0]),
                "sha256": _save_module(self.conditional, folder / CONDITIONAL_WEIGHTS)}
        else:
            (folder / CONDITIONAL_WEIGHTS).unlink(missing_ok=True)
        write_json(folder / MANIFEST, manifest)
        return folder

    @classmethod
    def load(cls, folder: str | Path, device: str = "auto", progress: bool = True,
             skip_generators: Collection[str] = ()) -> TSPG:
        """Rebuild a model saved with :meth:`save` (weights from safetensors, never pickle).

        Every file is checked as it is read (:func:`read_manifest`; each weights file against the manifest's
        SHA-256 and shapes): a missing or damaged one is one :class:`~tspg.data.InputError` that names it and the
        fix. ``skip_generators`` names targets whose generators are not loaded (they are about to be retrained,
        so a damaged file of theirs does not stop the retraining).
        """
        folder = Path(folder)
        m = read_manifest(folder)
        device = str(resolve_device(device))  # an unavailable device is the caller's error, not the folder's
        try:
            return cls._from_manifest(m, folder, device, progress, set(skip_generators))
        except (KeyError, RuntimeError, ValueError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"{folder}: the run folder is inconsistent ({type(exc).__name__}: "
                             f"{str(exc).splitlines()[0][:200]}); re-create it with 'tspg run'.") from None

    @classmethod
    def _from_manifest(cls, m: dict, folder: Path, device: str, progress: bool, skip: set[str]) -> TSPG:
        cfg = m["config"]
        model = cls(config_from_dict(ClassifierConfig, cfg["classifier"]),
                    config_from_dict(GeneratorConfig, cfg["generator"]), seed=m["seed"],
                    test_size=cfg["test_size"], val_size=cfg["val_size"], impute=cfg["impute"],
                    transform=cfg.get("transform", "none"), device=device,
                    progress=progress)
        model.genes, model.classes = list(m["genes"]), list(m["classes"])
        model.inputs, model.gene_set_report = m.get("inputs", {}), m.get("gene_sets", {})
        model.scaler = MinMaxScaler(np.asarray(m["scaler"]["min"], np.float32),
                                    np.asarray(m["scaler"]["range"], np.float32))
        model.fill = (np.asarray(m["fill"], np.float32) if m.get("fill") is not None
                      else np.full(len(model.genes), np.nan, np.float32))
        part = {s: p for p, names in m["split"].items() for s in names}
        order = m.get("split_order") or list(part)
        model.split = pd.Series([part[s] for s in order], index=pd.Index(order), name="part")
        cc = model.classifier_config
        model.classifier = _load_module(Classifier(len(model.genes), len(model.classes), tuple(cc.hidden)),
                                        folder / CLASSIFIER_WEIGHTS, "re-create the run with 'tspg run ... --force'",
                                        m.get("classifier_sha256")).to(model.device)
        cond_info = m.get("conditional")
        if cond_info is not None and any(info.get("generator") == "conditional" and t not in skip
                                         for t, info in m.get("targets", {}).items()):
            names = list(cond_info["targets"])
            k = cond_info.get("prior_components")
            prior = None if k is None else ConditionalPrior(len(model.genes), len(model.classes), int(k),
                                                            [model.classes.index(t) for t in names])
            fix = f"retrain it with 'tspg train-generator {folder} --generator conditional --target ...'"
            model.conditional = _load_module(ConditionalGenerator(len(model.genes), len(names), prior=prior),
                                             folder / CONDITIONAL_WEIGHTS, fix,
                                             cond_info.get("sha256")).to(model.device).eval()
            model.conditional_targets = names
        for t, info in m.get("targets", {}).items():
            if t in skip:
                continue
            fix = f"retrain that generator with 'tspg train-generator {folder} --target \"{t}\"'"
            if info.get("generator") == "conditional":
                if model.conditional is None or t not in model.conditional_targets:
                    raise InputError(f"{folder}: target '{t}' is served by a conditional generator the manifest "
                                     f"does not describe; {fix}.")
                model.generators[t] = TargetView(model.conditional, model.conditional_targets.index(t))
            else:
                training = info.get("training", {})
                k = training.get("prior_components")
                prior = None if k is None else TransportPrior(
                    len(model.genes), len(model.classes), int(k), int(training.get("prior_marginal_genes", 0)),
                    int(training.get("prior_marginal_levels", MARGINAL_LEVELS)))
                model.generators[t] = _load_module(Generator(len(model.genes), prior=prior),
                                                   folder / info["dir"] / GENERATOR_WEIGHTS, fix,
                                                   info.get("sha256")).to(model.device)
            saved = info.get("config", {})
            # a generator saved before the transport prior existed has none (config_from_dict would say "ot"), one
            # saved before cross-fitting was trained on the whole prior's displacements, and one saved before the
            # shrinkage has the plain prior (the prior's covariance: config_from_dict's BEFORE_THE_FIELD)
            saved = {"prior": "none", "prior_folds": 1, "prior_share_low": 1.0, "prior_shrink": "none", **saved}
            model.generator_configs[t] = config_from_dict(GeneratorConfig, saved)
            summary = dict(info.get("training", {}))
            if info.get("generator") == "conditional" and "prior_components" in summary:
                # a conditional prior saved before it was shrunk: unshrunk, each class's own covariance
                summary.setdefault("prior_shrink", "none")
                if saved.get("prior", "ot") == "ot":
                    summary.setdefault("prior_covariance", "own")
            model.generator_summaries[t] = summary
        return model
