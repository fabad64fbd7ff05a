"""A progress bar per training phase (epoch, losses, ETA), off with ``progress=False``."""

from __future__ import annotations

from tqdm.auto import tqdm


def epoch_bar(total: int, desc: str, progress: bool):  # noqa: ANN201
    """Return a tqdm bar over epochs; hidden when ``progress`` is False or stderr is not a terminal."""
    return tqdm(total=total, desc=desc, unit="epoch", disable=None if progress else True, leave=False,
                dynamic_ncols=True)
