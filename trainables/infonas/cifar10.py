"""CIFAR-10 images for network pretraining and the IO-dataset.

Three sources, looked for in this order inside the data directory (or given directly):

1. ``cifar-10-batches-py/`` -- the official Python pickles (what ``cifar-10-python.tar.gz``
   unpacks to; exact pixels);
2. ``cifar10/cifar10-images-jpeg.zip`` or any ``*.zip`` holding ``{train,test}/<class>/*.jpg``;
3. an image folder of the same layout (``cifar10/train/<class>/*.png|jpg``, ``.../test/...``).

The first load decodes every image once (PIL; no torchvision, which does not import beside
the CPU torch build we pin) into a ``.npz`` cache of uint8 arrays keyed by the source's
fingerprint; later loads read the cache (well under a second). The cache folder is
``$GNN2GNN_CACHE`` or ``~/.cache/gnn2gnn``.

Images are ``uint8 [N, 32, 32, 3]`` (HWC, RGB), labels ``int64 [N]`` with the official class
order. :func:`to_tensor` normalises with the CIFAR-10 channel statistics and :func:`augment`
applies the standard training augmentation (4-pixel zero padding + random 32x32 crop,
random horizontal flip) to a whole batch on its device, seeded by a ``torch.Generator``.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from pipeline.errors import UserError
from pipeline.nas.table import file_fingerprint
from pipeline.paths import cache_dir
from pipeline.store.io import atomic_path

CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


class CifarNotFoundError(UserError, FileNotFoundError):
    """No CIFAR-10 source where we looked."""


HOW_TO_GET = (
    "download cifar-10-python.tar.gz from https://www.cs.toronto.edu/~kriz/cifar.html and "
    "unpack it into the data folder (giving cifar-10-batches-py/), or put an image folder "
    "cifar10/{train,test}/<class>/*.jpg there"
)


@dataclass
class Cifar10:
    train_x: np.ndarray  # uint8 [50000, 32, 32, 3]
    train_y: np.ndarray  # int64 [50000]
    test_x: np.ndarray  # uint8 [10000, 32, 32, 3]
    test_y: np.ndarray  # int64 [10000]
    source: str
    fingerprint: str


def find_source(data_dir: Path) -> Path:
    """The first CIFAR-10 source in ``data_dir`` (see module docstring)."""
    data_dir = Path(data_dir)
    candidates = [
        data_dir / "cifar-10-batches-py",
        data_dir / "cifar10" / "cifar-10-batches-py",
        data_dir / "cifar10" / "cifar10-images-jpeg.zip",
        *(sorted((data_dir / "cifar10").glob("*.zip")) if (data_dir / "cifar10").is_dir() else []),
        data_dir / "cifar10",
    ]
    for c in candidates:
        if c.is_file() and c.suffix == ".zip":
            return c
        if c.is_dir() and (
            (c / "data_batch_1").is_file() or ((c / "train").is_dir() and (c / "test").is_dir())
        ):
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise CifarNotFoundError(f"no CIFAR-10 found (looked at {looked}): {HOW_TO_GET}")


def _decode(blob: bytes) -> np.ndarray:
    from PIL import Image

    img = Image.open(io.BytesIO(blob)).convert("RGB")
    if img.size != (32, 32):
        raise ValueError(f"expected 32x32 CIFAR-10 images, got {img.size}")
    return np.asarray(img, dtype=np.uint8)


def _split_entries(names: list[str]) -> dict[str, list[tuple[str, int]]]:
    """``{train,test}/<class>/<file>`` names -> per split, (name, class index) sorted."""
    out: dict[str, list[tuple[str, int]]] = {"train": [], "test": []}
    for name in names:
        parts = Path(name).parts
        if len(parts) < 3 or not name.lower().endswith(IMAGE_SUFFIXES):
            continue
        split, cls = parts[-3], parts[-2]
        if split in out and cls in CLASSES:
            out[split].append((name, CLASSES.index(cls)))
    for split, entries in out.items():
        if not entries:
            raise CifarNotFoundError(f"no {split}/<class>/*.jpg images in the CIFAR-10 source")
        entries.sort(key=lambda e: (e[1], e[0]))
    return out


def _read_images(read, entries: list[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    x = np.stack([_decode(read(name)) for name, _ in entries])
    y = np.array([c for _, c in entries], dtype=np.int64)
    return x, y


def _read_pickles(folder: Path) -> dict[str, np.ndarray]:
    def batch(name: str) -> tuple[np.ndarray, np.ndarray]:
        with open(folder / name, "rb") as fh:
            d = pickle.load(fh, encoding="bytes")
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(x), np.asarray(d[b"labels"], dtype=np.int64)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    test_x, test_y = batch("test_batch")
    return {
        "train_x": np.concatenate([p[0] for p in parts]),
        "train_y": np.concatenate([p[1] for p in parts]),
        "test_x": test_x,
        "test_y": test_y,
    }


def decode_source(source: Path) -> dict[str, np.ndarray]:
    """Decode every image of a source into arrays (slow: seconds; use :func:`load_cifar10`)."""
    source = Path(source)
    if source.is_dir() and (source / "data_batch_1").is_file():
        return _read_pickles(source)
    out: dict[str, np.ndarray] = {}
    if source.is_file():
        with zipfile.ZipFile(source) as z:
            for split, entries in _split_entries(z.namelist()).items():
                out[f"{split}_x"], out[f"{split}_y"] = _read_images(z.read, entries)
        return out
    names = [str(p.relative_to(source)) for p in source.rglob("*") if p.is_file()]
    for split, entries in _split_entries(names).items():
        out[f"{split}_x"], out[f"{split}_y"] = _read_images(
            lambda n: (source / n).read_bytes(), entries
        )
    return out


def load_cifar10(data_dir: str | Path | None = None, source: Path | None = None) -> Cifar10:
    """CIFAR-10 from ``source`` or the first source in ``data_dir`` (a folder, or a URI
    staged into this machine's cache), through the cache."""
    if source is None:
        if data_dir is None or "://" in str(data_dir):  # the default search, or a URI
            from pipeline.paths import resolve_data_dir

            data_dir = resolve_data_dir(data_dir)
        source = find_source(Path(data_dir))
    source = Path(source)
    if not source.exists():
        raise CifarNotFoundError(f"{source} does not exist: {HOW_TO_GET}")
    fp = file_fingerprint(source)
    cache = cache_dir() / f"cifar10-{fp}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            arrays = {k: z[k] for k in z.files}
    else:
        arrays = decode_source(source)
        with atomic_path(cache) as tmp:
            np.savez(tmp, **arrays)
    return Cifar10(
        arrays["train_x"],
        arrays["train_y"],
        arrays["test_x"],
        arrays["test_y"],
        str(source),
        fp,
    )


def to_tensor(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N, 32, 32, 3] -> normalised float32 [N, 3, 32, 32] on ``device``."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def augment_draws(
    gen: torch.Generator, sizes: list[int], pad: int = 4
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The crop offsets and flips of consecutive batches of ``sizes`` images, drawn from
    the CPU generator ``gen`` in the order :func:`augment` draws them batch by batch, and
    concatenated: move them to the device once per epoch, slice them per step."""
    dys, dxs, flips = [], [], []
    for b in sizes:
        dys.append(torch.randint(0, 2 * pad + 1, (b,), generator=gen))
        dxs.append(torch.randint(0, 2 * pad + 1, (b,), generator=gen))
        flips.append(torch.rand(b, generator=gen) < 0.5)
    return torch.cat(dys), torch.cat(dxs), torch.cat(flips)


def augment(
    x: torch.Tensor,
    gen: torch.Generator | None,
    pad: int = 4,
    draws: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
) -> torch.Tensor:
    """Random crop after zero padding and random horizontal flip of a batch [B, C, H, W].

    ``gen`` lives on the CPU so the same seed gives the same crops on any device; or
    ``draws`` (from :func:`augment_draws`, already on the device: no host copy a step)."""
    b, _, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx, flip = (t.to(x.device) for t in (draws or augment_draws(gen, [b], pad)))
    rows = (dy[:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = dx[:, None] + torch.arange(w, device=x.device)[None, :]
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]
    bidx = torch.arange(b, device=x.device)[:, None, None, None]
    cidx = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[bidx, cidx, rows, cols]
