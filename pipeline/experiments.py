"""The registry of experiments: every entry point of the ``gnn2gnn.experiments`` group.

A third paper is one package with an :class:`~pipeline.experiment.Experiment` object and
one line in its ``pyproject.toml``::

    [project.entry-points."gnn2gnn.experiments"]
    my_paper = "my_package:EXPERIMENT"

The entry point's name must equal the experiment's ``name``. Installed packages and
``*.dist-info`` folders on ``sys.path`` are both found (``importlib.metadata``).
"""

from __future__ import annotations

import warnings
from functools import cache
from importlib.metadata import entry_points

from pipeline.config import ConfigError
from pipeline.experiment import Experiment

GROUP = "gnn2gnn.experiments"


@cache
def experiments() -> dict[str, Experiment]:
    """Name -> experiment, in name order (loaded once per process)."""
    found: dict[str, Experiment] = {}
    for ep in entry_points(group=GROUP):
        if ep.name in found:
            continue  # the same distribution seen twice on sys.path
        try:
            exp = ep.load()
        except Exception as exc:  # one broken plugin must not stop the others
            warnings.warn(f"experiment {ep.name} ({ep.value}) not loaded: {exc!r}", stacklevel=2)
            continue
        if not isinstance(exp, Experiment):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not an Experiment")
        if exp.name != ep.name:
            raise TypeError(f"entry point {ep.name} names experiment {exp.name!r}")
        found[ep.name] = exp
    return dict(sorted(found.items()))


def get_experiment(name: str) -> Experiment:
    known = experiments()
    if name not in known:
        raise ConfigError(
            f"unknown experiment {name!r}; installed: {sorted(known)} (entry-point group "
            f"{GROUP}; after updating the project, reinstall it: pip install -e .)"
        )
    return known[name]


def validate_trial_config(experiment: str, config: dict, where: str) -> None:
    """Sweep-file check of one expanded trial config against its experiment's Config."""
    known = experiments()
    if experiment not in known:
        raise ConfigError(
            f"{where}: trainable: unknown experiment {experiment!r}; installed: {sorted(known)}"
        )
    known[experiment].make_config(config, where)
