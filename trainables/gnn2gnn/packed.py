"""Trial packing: P GNN2GNN trials that share shapes trained through one step.

Trials pack when they differ only in ``seed``, ``lambda``, ``tau``, ``lr`` and
``lr_critic`` (:func:`pack_key` is equal). Each keeps its own :class:`Trial` (data split,
modules, RNG streams, evaluation, selection, result); the step is that of
:class:`~trainables.gnn2gnn.training.Training`, run once on the trials' stacked weights, so
the ~900 small kernel launches of a step are paid once for P trials instead of P times.

Per trial, exactly as a trial trained alone:

- the noise, Gumbel and dropout draws come from the trial's own ``sampler`` in the same
  order, and the training batches from its own shuffling stream;
- losses are the trial's own; the P losses are summed for one backward, which gives each
  trial's weights exactly its own gradient (no weight is shared);
- its optimiser state (its learning rate, momentum, Adam moments: a parameter group per
  trial) is its own, and its own modules are evaluated and selected on after every epoch.

At the same seed and initial weights the first step's losses equal the unpacked ones to
float rounding (``tests/trainables/gnn2gnn/test_packed.py``); later steps drift apart by
rounding only, which GAN training amplifies, so packed and unpacked runs agree
statistically, not bitwise.
"""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.experiment import Reporter, TrialResult
from trainables.gnn2gnn.config import GNN2GNNConfig
from trainables.gnn2gnn.training import LOSS_NAMES, Training
from trainables.gnn2gnn.trial import Trial

__all__ = ["LOSS_NAMES", "PACKABLE_FIELDS", "PackedTrainer", "pack_key", "packable", "run_packed"]

# fields packed trials may differ in; every other field must be equal
PACKABLE_FIELDS = ("seed", "lam", "tau", "lr", "lr_critic")


def packable(cfg: GNN2GNNConfig) -> str | None:
    """None when a trial with this config can be packed, else the reason why not."""
    if cfg.model not in ("gnn2gnn", "gnn2gnn_edges"):
        return f"model {cfg.model!r} (only the GNN2GNN generators pack)"
    if cfg.entropy_weight > 0 and cfg.model == "gnn2gnn":
        return "entropy_weight > 0 (packs with gnn2gnn_edges only)"
    if cfg.spectral_norm:
        return "spectral_norm"
    if cfg.generator_ema > 0:
        return "generator_ema > 0"
    return None


def pack_key(cfg: GNN2GNNConfig) -> tuple | None:
    """Trials with equal keys can be packed together (None: this one cannot be packed)."""
    if packable(cfg) is not None:
        return None
    data = cfg.model_dump(exclude=set(PACKABLE_FIELDS))
    if cfg.split_seed is None:  # the split follows the seed: the data differ per trial
        data["seed"] = cfg.seed
    return tuple(sorted((k, repr(v)) for k, v in data.items()))


class PackedTrainer(Training):
    """Train P packable trials (see module docstring) together; ``run`` returns their
    results in order."""

    def __init__(self, trials: Sequence[Trial]) -> None:
        if not trials:
            raise ValueError("nothing to pack")
        keys = {pack_key(t.cfg) for t in trials}
        if None in keys or len(keys) > 1:
            why = [packable(t.cfg) for t in trials if packable(t.cfg)]
            raise ValueError(
                "these trials cannot be packed together: "
                + (why[0] if why else f"they differ in more than {', '.join(PACKABLE_FIELDS)}")
            )
        super().__init__(trials)


def run_packed(
    configs: Sequence[GNN2GNNConfig],
    reporters: Sequence[Reporter | None] | None = None,
    progress: bool = False,
    bench=None,
) -> list[TrialResult]:
    """Build the trials and train them packed (one group; see :class:`PackedTrainer`)."""
    first = Trial(configs[0], bench)  # its tables serve every trial of the group
    trials = [first] + [Trial(cfg, first.bench) for cfg in configs[1:]]
    return PackedTrainer(trials).run(reporters, progress)
