"""Fitting the classifier f (the paper's "target model")."""

from __future__ import annotations

import copy
import logging

import numpy as np
import torch
from torch import nn

from tspg.data import InputError
from tspg.nn import Classifier, seeded
from tspg.train._config import ClassifierConfig
from tspg.train._hardware import (
    autocast,
    fp32_products,
    resolve_device,
    resolve_precision,
    warn_if_slow_precision,
)
from tspg.train._optim import Adam
from tspg.train._progress import epoch_bar

log = logging.getLogger(__name__)

# A validation-loss improvement smaller than this does not reset the early-stopping patience.
MIN_DELTA = 1e-3


@torch.no_grad()
def predict_logits(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 4096,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """Logits of ``model`` (in eval mode) for every row of ``x``, computed in batches; returned on the CPU."""
    was_training = model.training
    model.eval()
    xt = torch.as_tensor(x, dtype=torch.float32)
    out = [model(xt[i:i + batch_size].to(device)).float().cpu() for i in range(0, len(xt), batch_size)]
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def fit_classifier(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int,
    config: ClassifierConfig,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: bool = True,
    classifier: Classifier | None = None,
) -> tuple[Classifier, list[dict]]:
    """Train the classifier with Adam and cross-entropy; keep the weights of the best validation loss.

    The classifier's input centre is set to the mean of ``x_train`` before training (see :class:`Classifier`).

    Parameters
    ----------
    x_train, y_train
        Scaled training samples and class indices.
    x_val, y_val
        The validation part (for early stopping); may be empty, then every epoch runs.
    n_classes
        Number of classes.
    config
        Layer sizes and optimiser settings.
    seed
        Seeds the weights and the batch order.
    device
        Torch device.
    progress
        Show a progress bar.
    classifier
        The untrained network to fit (its input centre is overwritten); by default a new :class:`Classifier` of
        ``config.hidden`` with weights drawn under :func:`tspg.nn.seeded` ``(seed)``. Nothing here touches
        torch's global random state.

    Returns
    -------
    The trained classifier (eval mode) and one history row per epoch.
    """
    config.validate()
    if len(x_train) == 0:
        raise InputError("the classifier needs training samples, and x_train is empty.")
    device = resolve_device(device)
    precision = resolve_precision(config.precision, device)
    warn_if_slow_precision(device, precision)
    gen = torch.Generator().manual_seed(seed)
    if classifier is None:
        with seeded(seed):
            classifier = Classifier(x_train.shape[1], n_classes, tuple(config.hidden))
    model = classifier.to(device)
    xt = torch.as_tensor(x_train, dtype=torch.float32, device=device)
    model.center.copy_(xt.mean(0))
    opt = Adam(model.parameters(), lr=config.lr)
    loss_fn = nn.CrossEntropyLoss()
    yt = torch.as_tensor(y_train, dtype=torch.long, device=device)
    xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
    yv = torch.as_tensor(y_val, dtype=torch.long, device=device)
    has_val = len(y_val) > 0
    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    history: list[dict] = []
    bar = epoch_bar(config.epochs, "classifier", progress)
    with fp32_products():  # its batches and validation part: a few fixed shapes
        for epoch in range(1, config.epochs + 1):
            model.train()
            order = torch.randperm(len(xt), generator=gen).to(device)
            total = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync per step
            for i in range(0, len(order), config.batch_size):
                idx = order[i:i + config.batch_size]
                with autocast(device, precision):
                    logits = model(xt[idx])
                loss = loss_fn(logits.float(), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.detach().double() * len(idx)
            row = {"epoch": epoch, "loss": float(total) / len(order)}
            if has_val:
                model.eval()
                with torch.no_grad():
                    logits = model(xv)
                    row["val_loss"] = float(loss_fn(logits, yv))
                    row["val_accuracy"] = float((logits.argmax(1) == yv).float().mean())
                if row["val_loss"] < best_loss - MIN_DELTA:
                    best_loss, best_epoch, stale = row["val_loss"], epoch, 0
                    best_state = copy.deepcopy(model.state_dict())
                else:
                    stale += 1
            history.append(row)
            bar.update(1)
            bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k != "epoch"})
            # Once the best validation loss is below MIN_DELTA no later epoch can beat it by MIN_DELTA, so the kept
            # weights are final: stopping now gives the same classifier as waiting out the patience (W3: 2 epochs, 15 s,
            # instead of 12 epochs, 65 s)
            if has_val and config.patience and (stale >= config.patience or best_loss < MIN_DELTA):
                break
        bar.close()
    for row in history:
        row["kept"] = int(row["epoch"] == best_epoch)
    if best_state is not None:
        model.load_state_dict(best_state)
        log.info("classifier: best validation loss %.4f at epoch %d of %d", best_loss, best_epoch, len(history))
    model.eval()
    return model, history
