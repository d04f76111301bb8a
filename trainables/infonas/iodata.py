"""The IO-dataset of Info-NAS: (network, image) -> preprocessed output features.

Built from a pretraining folder (``gnn2gnn pretrain``, see :mod:`trainables.infonas.pretrain`):
each network there has the pooled features of the fixed IO images (held-out training
images, "seen" by the IO model) and of the "unseen" test images, and its classifier.

Preprocessing of one network's features ``f`` [images, F] (each step a config field,
:class:`Preprocess`), as the paper's section 3.2:

1. ``scale``: per-network scaler fitted on all of that network's outputs: ``global`` (one
   mean and one standard deviation, the paper's choice), ``feature`` (per feature) or
   ``none``;
2. append 1 (the bias) to the features and the bias to the classifier row ``w`` of the
   image's class;
3. sort the features by that weight, largest first, and multiply by the sorted weights;
4. ``top_k``: keep the first k (the most important) entries, or all (F + 1).

Finally, the targets are standardised per column with statistics of the training split
(``normalize``), "so that all features contribute equally to the loss".

Splits (the paper's appendix A.2, Table 2): ``train`` = training networks x IO images;
``valid_networks`` = validation ("unseen") networks x IO images; ``valid_images`` = a
``valid_image_fraction`` (0.1) of the training networks x test ("unseen") images;
``test`` = the other training networks x test images and validation networks x test images.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import pydantic

from pipeline.config import StrictModel
from pipeline.errors import UserError
from pipeline.store.location import Location


class IODataError(UserError, FileNotFoundError):
    """A missing or incomplete pretraining folder."""


def space_split(num_cells: int, valid_fraction: float = 0.1, seed: int = 0):
    """Seeded split of a benchmark's rows into (train rows, validation rows), sorted.

    The same split serves the VAE's held-out cells and the choice of pretrained networks
    (training networks from the training part, validation networks from the other)."""
    rng = np.random.default_rng(seed)
    perm = rng.permutation(num_cells)
    n_valid = int(round(num_cells * valid_fraction))
    return np.sort(perm[n_valid:]), np.sort(perm[:n_valid])


class Preprocess(StrictModel):
    scale: Literal["global", "feature", "none"] = "global"
    top_k: int | None = pydantic.Field(None, ge=1, description="None: all features + bias")
    normalize: bool = True
    valid_image_fraction: float = pydantic.Field(0.1, gt=0, lt=1)


def preprocess_network(
    features: np.ndarray, weight: np.ndarray, bias: np.ndarray, labels: np.ndarray, p: Preprocess
) -> np.ndarray:
    """One network's features [I, F] -> targets [I, D] (steps 1-4 of the module docstring).

    ``weight`` [C, F] and ``bias`` [C] are the network's classifier; ``labels`` [I] the
    images' classes."""
    f = np.asarray(features, dtype=np.float64)
    if p.scale == "global":
        f = (f - f.mean()) / (f.std() + 1e-8)
    elif p.scale == "feature":
        f = (f - f.mean(0)) / (f.std(0) + 1e-8)
    f = np.concatenate([f, np.ones((len(f), 1))], axis=1)
    w = np.concatenate([weight, bias[:, None]], axis=1)[np.asarray(labels)].astype(np.float64)
    order = np.argsort(-w, axis=1, kind="stable")
    out = np.take_along_axis(f, order, 1) * np.take_along_axis(w, order, 1)
    if p.top_k is not None:
        out = out[:, : p.top_k]
    return out.astype(np.float32)


@dataclass
class LabelledSplit:
    """``pairs`` [M, 2] = (network index, image index) into ``networks`` and ``image_set``."""

    name: str
    networks: list[str]  # hashes
    image_set: Literal["io", "test"]
    targets: np.ndarray  # [len(networks), images, D] float32
    pairs: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        n, i = self.targets.shape[:2]
        self.pairs = np.stack(np.meshgrid(np.arange(n), np.arange(i), indexing="ij"), -1).reshape(
            -1, 2
        )

    def __len__(self) -> int:
        return len(self.pairs)


@dataclass
class IODataset:
    folder: Location  # the pretraining folder (local or on object storage)
    io_images: np.ndarray  # indices into the CIFAR-10 training set
    test_images: np.ndarray  # indices into the CIFAR-10 test set
    splits: dict[str, LabelledSplit]
    networks: pd.DataFrame  # networks.parquet
    mean: np.ndarray  # [D] column statistics of the raw train targets (normalize)
    std: np.ndarray
    preprocess: Preprocess
    pretrain_config: dict = field(default_factory=dict)  # images.json's config

    @property
    def dim(self) -> int:
        return int(self.splits["train"].targets.shape[-1])

    def save(self, out) -> Location:
        """Targets as one ``.npy`` per split and ``index.parquet`` (split, network, images),
        in a folder or under a URI, each file whole or not at all."""
        from pipeline.store.results import write_parquet

        out = Location.of(out)
        out.mkdir()
        rows = []
        for name, s in self.splits.items():
            _save_npy(s.targets, out / f"{name}.npy")
            rows += [
                {"split": name, "position": k, "hash": h, "image_set": s.image_set}
                for k, h in enumerate(s.networks)
            ]
        _save_npy(self.io_images, out / "io_images.npy")
        _save_npy(self.test_images, out / "test_images.npy")
        text = json.dumps({"preprocess": self.preprocess.model_dump()}, indent=2)
        (out / "preprocess.json").write_bytes(text.encode())
        write_parquet(pd.DataFrame(rows), out / "index.parquet")
        return out


def _save_npy(array: np.ndarray, target: Location) -> None:
    buf = io.BytesIO()
    np.save(buf, array)
    target.write_bytes(buf.getvalue())


def check_io_folder(folder) -> Location:
    """``folder`` (a path or a URI) as a Location; IODataError unless it is a finished
    pretraining folder (its index and image lists written)."""
    folder = Location.of(folder)
    if not (folder / "networks.parquet").is_file() or not (folder / "images.json").is_file():
        raise IODataError(
            f"{folder} is not a finished pretraining folder (no networks.parquet/images.json); "
            "run `gnn2gnn pretrain --profile <profile>` first"
        )
    return folder


def load_io_dataset(
    folder, preprocess: Preprocess | None = None, seed: int = 0, cifar=None
) -> IODataset:
    """Read a pretraining folder (a path or a URI) and build the preprocessed, split
    IO-dataset; ``cifar`` (a loaded :class:`~trainables.infonas.cifar10.Cifar10`) saves loading the
    images again."""
    from trainables.infonas.cifar10 import load_cifar10

    folder = check_io_folder(folder)
    p = preprocess or Preprocess()
    index_path = folder / "networks.parquet"
    images = json.loads((folder / "images.json").read_text())
    cfg = images.get("config", {})
    nets = pd.read_parquet(index_path.path, filesystem=index_path.fs)
    train_nets = nets.loc[nets["role"] == "train", "hash"].tolist()
    valid_nets = nets.loc[nets["role"] == "valid", "hash"].tolist()
    if len(train_nets) < 2 or not valid_nets:
        raise IODataError(
            f"{folder}: need at least 2 training and 1 validation networks finished, have "
            f"{len(train_nets)} and {len(valid_nets)}"
        )
    data = cifar or load_cifar10(cfg.get("data_dir"))
    io_idx, test_idx = np.asarray(images["io"]), np.asarray(images["test"])
    io_labels, test_labels = data.train_y[io_idx], data.test_y[test_idx]

    def targets(hashes: list[str], image_set: str) -> np.ndarray:
        out = []
        labels = io_labels if image_set == "io" else test_labels
        for h in hashes:
            raw = io.BytesIO((folder / "networks" / h / "features.npz").read_bytes())
            with np.load(raw) as z:
                out.append(preprocess_network(z[image_set], z["weight"], z["bias"], labels, p))
        return np.stack(out)

    rng = np.random.default_rng(seed)
    shuffled = [train_nets[i] for i in rng.permutation(len(train_nets))]
    n_vi = max(1, int(round(len(train_nets) * p.valid_image_fraction)))
    vi_nets, rest_nets = shuffled[:n_vi], shuffled[n_vi:]
    splits = {
        "train": LabelledSplit("train", train_nets, "io", targets(train_nets, "io")),
        "valid_networks": LabelledSplit(
            "valid_networks", valid_nets, "io", targets(valid_nets, "io")
        ),
        "valid_images": LabelledSplit("valid_images", vi_nets, "test", targets(vi_nets, "test")),
        "test_seen_networks": LabelledSplit(
            "test_seen_networks", rest_nets, "test", targets(rest_nets, "test")
        ),
        "test_unseen_networks": LabelledSplit(
            "test_unseen_networks", valid_nets, "test", targets(valid_nets, "test")
        ),
    }
    flat = splits["train"].targets.reshape(-1, splits["train"].targets.shape[-1])
    mean, std = flat.mean(0), flat.std(0) + 1e-6
    if p.normalize:
        for s in splits.values():
            s.targets = ((s.targets - mean) / std).astype(np.float32)
    else:
        mean, std = np.zeros_like(mean), np.ones_like(std)
    return IODataset(folder, io_idx, test_idx, splits, nets, mean, std, p, cfg)


def mean_baseline_l1(targets: np.ndarray) -> float:
    """The paper's baseline: L1 between each example and the mean vector of its data set."""
    flat = targets.reshape(-1, targets.shape[-1])
    return float(np.abs(flat - flat.mean(0)).mean())
