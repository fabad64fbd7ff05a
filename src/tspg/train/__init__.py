"""Training plans: classifier fitting, the adversarial loop, losses, target-distribution samplers."""

from tspg.train._adversarial import (
    AdversarialPlan,
    checkpoint_score,
    fit_generator,
    generate,
    kept_row,
    new_adversary,
    perturbation_accuracy,
)
from tspg.train._classifier import fit_classifier, predict_logits
from tspg.train._conditional import (
    ConditionalPlan,
    check_conditional_config,
    fit_conditional_generator,
    fit_conditional_prior,
)
from tspg.train._config import ClassifierConfig, GeneratorConfig, config_from_dict, config_to_dict, resolved_w_norm
from tspg.train._hardware import PRECISIONS, autocast, cpu_has_native_bf16, resolve_device, resolve_precision
from tspg.train._losses import (
    EnergyGain,
    adversarial_loss,
    energy_gain_z,
    gan_discriminator_loss,
    gan_generator_loss,
    norm_loss,
    target_distance_loss,
)
from tspg.train._prior import (
    N_COMPONENTS,
    CrossFittedTransport,
    adaptive_shrink_factors,
    adaptive_shrinkage,
    blend_weight,
    class_gaussians,
    fit_pca,
    fit_transport_prior,
    out_of_fold_transport,
    project,
    shrink_factors,
)
from tspg.train._target import TARGET_COV_MODELS, TargetSampler

__all__ = [
    "N_COMPONENTS",
    "AdversarialPlan",
    "ConditionalPlan",
    "CrossFittedTransport",
    "EnergyGain",
    "PRECISIONS",
    "TARGET_COV_MODELS",
    "ClassifierConfig",
    "GeneratorConfig",
    "TargetSampler",
    "adaptive_shrink_factors",
    "adaptive_shrinkage",
    "adversarial_loss",
    "autocast",
    "blend_weight",
    "check_conditional_config",
    "checkpoint_score",
    "class_gaussians",
    "config_from_dict",
    "config_to_dict",
    "cpu_has_native_bf16",
    "energy_gain_z",
    "fit_classifier",
    "fit_conditional_generator",
    "fit_conditional_prior",
    "fit_generator",
    "fit_pca",
    "fit_transport_prior",
    "out_of_fold_transport",
    "shrink_factors",
    "gan_discriminator_loss",
    "gan_generator_loss",
    "generate",
    "kept_row",
    "new_adversary",
    "norm_loss",
    "perturbation_accuracy",
    "predict_logits",
    "project",
    "resolve_device",
    "resolve_precision",
    "resolved_w_norm",
    "target_distance_loss",
]
