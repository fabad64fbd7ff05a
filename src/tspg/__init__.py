"""tspg: the Transcriptome State Perturbation Generator (TSPG) as a toolkit.

Train a classifier on labelled expression profiles, then a generator per target class that perturbs any
sample until the classifier calls it the target while it stays realistic; the per-gene perturbations say
which genes a transition needs.
"""

from tspg._settings import settings

__version__ = "0.1.0"

__all__ = ["TSPG", "Perturbation", "__version__", "settings"]


def __getattr__(name: str):  # noqa: ANN202
    """Import the model lazily so that ``import tspg`` (and ``tspg --help``) stay fast."""
    if name in ("TSPG", "Perturbation"):
        from tspg import model

        return getattr(model, name)
    raise AttributeError(f"module 'tspg' has no attribute {name!r}")
