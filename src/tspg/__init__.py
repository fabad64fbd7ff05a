"""tspg: the Transcriptome State Perturbation Generator (TSPG) as a toolkit.

Train a classifier on labelled expression profiles, then a generator per target class that perturbs any
sample until the classifier calls it the target while it stays realistic; the per-gene perturbations say
which genes a transition needs.
"""

import os as _os

# Same seed, same data, same machine: same results. MKL and OpenMP may otherwise lower their thread count when
# the machine is busy, which changes the order of floating-point sums from run to run. (Only effective when tspg
# is imported before torch; the ``tspg`` command always is.)
for _var in ("MKL_DYNAMIC", "OMP_DYNAMIC"):
    _os.environ.setdefault(_var, "FALSE")

__version__ = "0.1.0"

__all__ = ["TSPG", "Perturbation", "__version__"]


def __getattr__(name: str):  # noqa: ANN202
    """Import the model lazily so that ``import tspg`` (and ``tspg --help``) stay fast."""
    if name in ("TSPG", "Perturbation"):
        from tspg import model

        return getattr(model, name)
    raise AttributeError(f"module 'tspg' has no attribute {name!r}")
