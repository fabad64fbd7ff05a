"""The realism options of the CLI map onto GeneratorConfig; --paper-loss gives the paper's loss."""

import pytest

from tspg._options import CHECKPOINT_RULES, DISC_REAL, PAPER_LOSS, TD_LOSSES
from tspg.cli import FLAGS, _configs
from tspg.data import InputError
from tspg.train import GeneratorConfig


def test_defaults_are_the_realism_defaults():
    _, gc = _configs({})
    assert (gc.td_loss, gc.disc_real, gc.checkpoint, gc.zero_init, gc.w_ind, gc.td_smoothing) == (
        "energy", "target", "realism", True, 1.0, 0.5)


def test_paper_loss_then_flags_on_top():
    _, gc = _configs({"paper_loss": True})
    assert all(getattr(gc, k) == v for k, v in PAPER_LOSS.items())
    assert (gc.td_loss, gc.disc_real, gc.zero_init, gc.w_ind, gc.kappa, gc.w_td) == ("draw", "all", False, 0.0, 0.0,
                                                                                      1.0)
    _, gc = _configs({"paper_loss": True, "td_loss": "energy", "w_td": 3.0, "g_init": "zero"})
    assert (gc.td_loss, gc.w_td, gc.zero_init, gc.disc_real) == ("energy", 3.0, True, "all")


def test_each_flag_sets_its_field_and_bad_weights_are_refused():
    _, gc = _configs({"td_loss": "mmd", "disc_real": "all", "checkpoint_rule": "margin", "w_ind": 0.0,
                      "g_init": "random"})
    assert (gc.td_loss, gc.disc_real, gc.checkpoint, gc.w_ind, gc.zero_init) == ("mmd", "all", "margin", 0.0, False)
    with pytest.raises(InputError, match="GeneratorConfig.w_ind must be a finite number >= 0.0, not -1.0") as info:
        _configs({"w_ind": -1.0})
    assert info.value.cli_message(FLAGS) == "--w-ind must be a finite number >= 0.0, not -1.0."


def test_choices_come_from_the_config_registries():
    for name, allowed in (("td_loss", TD_LOSSES), ("disc_real", DISC_REAL), ("checkpoint", CHECKPOINT_RULES)):
        for value in allowed:
            GeneratorConfig(**{name: value})
