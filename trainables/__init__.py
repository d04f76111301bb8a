"""Experiments, one package per paper: :mod:`trainables.gnn2gnn` (GNN2GNN and its
baselines) and :mod:`trainables.infonas` (arch2vec and the Info-NAS IO model). Each
package exposes an ``EXPERIMENT`` (:class:`pipeline.experiment.Experiment`), registered
in ``pyproject.toml`` under the ``gnn2gnn.experiments`` entry-point group."""
