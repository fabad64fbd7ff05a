"""Names of the generator's loss options, in a module without heavy imports (the CLI reads them for --help)."""

#: Target-distribution terms of G's loss (``GeneratorConfig.td_loss``).
TD_LOSSES: tuple[str, ...] = ("energy", "mmd", "sinkhorn", "draw")
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
                    "td_smoothing": 0.0}
