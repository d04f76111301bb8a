"""Pretraining NAS-Bench-101 networks on CIFAR-10: the raw material of the IO-dataset.

``run_pretraining(config)`` samples networks (seeded) from the arch2vec-style split of the
search space -- training networks from the training part, validation networks from the
validation part (:func:`trainables.infonas.iodata.space_split`) -- and trains each one as a Ray task
(embedded local Ray by default, a cluster with ``address``; a fraction of a GPU per task when
the cluster has GPUs). The folder is a local (or NFS) path or a URI on object storage
(``s3://...``; see :mod:`pipeline.store.location`): each task writes its files there, whole or not
at all. Per network, in ``<folder>/networks/<hash>/``:

- ``checkpoint.pt``: the trained weights (state dict) and the cell;
- ``features.npz``: the pooled features before the classifier for the fixed IO images
  (``io``: held-out training images; ``test``: test images, the "unseen images"), the
  classifier's weight and bias, and the network's own test accuracy;
- ``done.json``: written last; a network with it is never trained again, so rerunning the
  command after a crash or with more networks only trains what is missing.

``<folder>/images.json`` pins which images are IO images (a rerun with another image
selection is refused), ``<folder>/networks.parquet`` indexes the finished networks.

Training (paper, Info-NAS appendix A.1): SGD lr 0.025, momentum 0.9, weight decay 1e-4,
cosine schedule to 0 over all steps, gradient clipping at norm 5, batch 128, 12 epochs,
standard augmentation; networks trained on the CIFAR-10 training set minus the IO images.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pipeline.config import ConfigError
from pipeline.experiment import pick_device
from pipeline.store.location import Location
from trainables.infonas.pretrain_config import PROFILES, PretrainConfig, make_config

__all__ = [
    "PROFILES", "PretrainConfig", "Pretraining", "make_config", "run_pretraining",
    "start_pretraining", "train_network",
]  # fmt: skip


def image_selection(cfg: PretrainConfig, train_y: np.ndarray, test_y: np.ndarray) -> dict:
    """Seeded, class-stratified choice of IO images (from the training set), 'unseen' test
    images, training images (the rest of the training set) and evaluation images."""
    rng = np.random.default_rng(cfg.seed + 1)

    def stratified(y: np.ndarray, k: int) -> np.ndarray:
        per = np.array_split(rng.permutation(k), 10)  # k split as evenly as possible
        picks = []
        for c in range(10):
            members = np.flatnonzero(y == c)
            picks.append(rng.choice(members, size=len(per[c]), replace=False))
        return np.sort(np.concatenate(picks))

    io_images = stratified(train_y, cfg.io_images)
    rest = np.setdiff1d(np.arange(len(train_y)), io_images)
    train = rest if cfg.train_images is None else np.sort(rng.choice(rest, cfg.train_images, False))
    test = stratified(test_y, cfg.test_images)
    n_eval = len(test_y) if cfg.eval_images is None else min(cfg.eval_images, len(test_y))
    evaluation = np.sort(rng.choice(len(test_y), n_eval, replace=False))
    return {
        "io": io_images.tolist(),
        "test": test.tolist(),
        "train": train.tolist(),
        "eval": evaluation.tolist(),
    }


def pick_networks(cfg: PretrainConfig, bench) -> list[tuple[str, str]]:
    """(hash, role) of the sampled networks: role 'train' or 'valid'."""
    from trainables.infonas.iodata import space_split

    train_rows, valid_rows = space_split(len(bench), cfg.valid_fraction, seed=cfg.seed)
    rng = np.random.default_rng(cfg.seed + 2)
    tr = rng.choice(train_rows, size=cfg.train_networks, replace=False)
    va = rng.choice(valid_rows, size=cfg.valid_networks, replace=False)
    return [(str(bench.hashes[r]), "train") for r in tr] + [
        (str(bench.hashes[r]), "valid") for r in va
    ]


def _seed_of(cfg: PretrainConfig, hash_: str) -> int:
    return (cfg.seed * 1_000_003 + int(hash_[:8], 16)) % (2**31)


@torch.no_grad()
def _features(net, x_uint8: np.ndarray, device, batch: int = 500) -> np.ndarray:
    from trainables.infonas.cifar10 import to_tensor

    net.eval()
    out = [
        net.features(to_tensor(x_uint8[i : i + batch], device)).float().cpu()
        for i in range(0, len(x_uint8), batch)
    ]
    return torch.cat(out).numpy()


def train_network(
    hash_: str,
    ops: list[str],
    adjacency: list[list[int]],
    cfg_dict: dict,
    folder: str,
    images: dict,
    log: Callable[[str], None] | None = None,
) -> dict:
    """Train one network and write its files (see module docstring); returns its record."""
    from pipeline.nas.cells import Cell
    from pipeline.sweep.session import apply_forwarded_credentials
    from pipeline.sweep.worker import node_data_dir
    from trainables.infonas.cifar10 import augment, augment_draws, load_cifar10, to_tensor
    from trainables.infonas.nb101net import NB101Network, count_parameters

    apply_forwarded_credentials()
    cfg = make_config(cfg_dict)
    out = Location.of(folder) / "networks" / hash_
    if (out / "done.json").is_file():
        return json.loads((out / "done.json").read_text())
    t0 = time.time()
    device = pick_device(cfg.device)
    seed = _seed_of(cfg, hash_)
    torch.manual_seed(seed)
    data = load_cifar10(node_data_dir(cfg.data_dir) if cfg.data_dir else None)
    cell = Cell.from_lists(ops, np.array(adjacency, dtype=np.uint8))
    net = NB101Network(cell, cfg.stem_channels, cfg.num_stacks, cfg.cells_per_stack).to(device)
    # bf16 autocast (and channels_last) on CUDA unless fp32 is asked for; fp32 on the CPU
    # unless bf16 is. No host sync in the loop: losses add up on the device, the epoch's
    # crops and flips move to the device once, the images live there.
    bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    net = net.to(memory_format=layout)
    train_idx = np.asarray(images["train"])
    x_all = to_tensor(data.train_x[train_idx], device).contiguous(memory_format=layout)
    y_all = torch.from_numpy(data.train_y[train_idx]).to(device)
    steps_per_epoch = math.ceil(len(train_idx) / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    gen = torch.Generator().manual_seed(seed)
    losses = []
    t_train = time.perf_counter()
    for epoch in range(cfg.epochs):
        net.train()
        perm = torch.randperm(len(train_idx), generator=gen).to(device)
        sizes = [
            min(cfg.batch_size, len(train_idx) - s * cfg.batch_size) for s in range(steps_per_epoch)
        ]
        draws = [t.to(device) for t in augment_draws(gen, sizes)]
        run = torch.zeros((), device=device)
        for s in range(steps_per_epoch):
            lo, hi = s * cfg.batch_size, s * cfg.batch_size + sizes[s]
            idx = perm[lo:hi]
            x = augment(x_all[idx], None, draws=tuple(t[lo:hi] for t in draws))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x.contiguous(memory_format=layout)), y_all[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
            opt.step()
            sched.step()
            run = run + loss.detach().float()
        losses.append(float(run) / steps_per_epoch)  # one host sync an epoch
        if log:
            log(f"{hash_[:8]} epoch {epoch + 1}/{cfg.epochs} loss {losses[-1]:.3f}")
    train_seconds = time.perf_counter() - t_train
    del x_all
    net.eval()
    ev = np.asarray(images["eval"])
    with torch.no_grad():
        correct = 0
        for i in range(0, len(ev), 500):
            xb = to_tensor(data.test_x[ev[i : i + 500]], device)
            pred = net(xb).argmax(1).cpu().numpy()
            correct += int((pred == data.test_y[ev[i : i + 500]]).sum())
    test_acc = 100.0 * correct / len(ev)
    feats_io = _features(net, data.train_x[np.asarray(images["io"])], device)
    feats_test = _features(net, data.test_x[np.asarray(images["test"])], device)
    buf = io.BytesIO()
    state = {k: v.cpu() for k, v in net.state_dict().items()}
    torch.save({"state": state, "ops": ops, "adj": adjacency}, buf)
    (out / "checkpoint.pt").write_bytes(buf.getvalue())
    buf = io.BytesIO()
    np.savez(
        buf,
        io=feats_io.astype(np.float32),
        test=feats_test.astype(np.float32),
        weight=net.classifier.weight.detach().cpu().numpy().astype(np.float32),
        bias=net.classifier.bias.detach().cpu().numpy().astype(np.float32),
    )
    (out / "features.npz").write_bytes(buf.getvalue())
    record = {
        "hash": hash_,
        "test_acc": test_acc,
        "train_loss": losses[-1],
        "params": count_parameters(net),
        "seconds": time.time() - t0,
        "images_per_s": cfg.epochs * len(train_idx) / max(train_seconds, 1e-9),
        "precision": "bf16" if bf16 else "fp32",
        "device": str(device),
        "epochs": cfg.epochs,
        "stem_channels": cfg.stem_channels,
    }
    _write_json(record, out / "done.json")  # last: marks the network finished
    return record


def _write_json(obj: dict, target: Location) -> None:
    target.write_bytes(json.dumps(obj, indent=2, default=str).encode())


def _images_file(folder: Location, cfg: PretrainConfig, selection: dict, fingerprint: str) -> None:
    path = folder / "images.json"
    pinned = {
        "cifar10_fingerprint": fingerprint,
        "io": selection["io"],
        "test": selection["test"],
        "stem_channels": cfg.stem_channels,
        "epochs": cfg.epochs,
    }
    if path.is_file():
        old = json.loads(path.read_text())
        for key in pinned:
            if old.get(key) != pinned[key]:
                raise ConfigError(
                    f"{folder} holds networks pretrained with another {key}; use another "
                    "--results folder or the same settings"
                )
        return
    _write_json({**pinned, "config": cfg.model_dump()}, path)


def write_index(folder: Location, roles: dict[str, str], bench) -> pd.DataFrame:
    """networks.parquet: one row per finished network (role, test accuracy, benchmark label)."""
    from pipeline.store.results import write_parquet

    rows = []
    for h, role in roles.items():
        done = folder / "networks" / h / "done.json"
        if done.is_file():
            rec = json.loads(done.read_text())
            row = bench.lookup(h)
            acc = float(bench.accuracy[row]) if row is not None else float("nan")
            rows.append({**rec, "role": role, "benchmark_acc": acc, "label": bench.label})
    frame = pd.DataFrame(rows)
    if len(frame):
        write_parquet(frame, folder / "networks.parquet")
    return frame


class Pretraining:
    """The networks of a pretraining folder not yet finished, trained as Ray tasks: made
    with the config and folder, :meth:`submit` once Ray is up, :meth:`poll` until it says
    done (non-blocking with ``timeout=0``), then :meth:`summary`. ``io_dataset``: build
    ``<folder>/io_dataset`` (as one more Ray task) once the networks are done."""

    def __init__(
        self,
        config: dict,
        folder,
        log: Callable[[str], None] = print,
        io_dataset: bool = False,
    ) -> None:
        from pipeline.nas.benchmarks import load_benchmark
        from trainables.infonas.cifar10 import load_cifar10

        cfg = make_config(config)
        self.folder = folder = Location.of(folder)
        folder.mkdir()
        self.bench = load_benchmark("nasbench101", data_dir=cfg.data_dir)
        data = load_cifar10(cfg.data_dir)
        if cfg.data_dir is None:
            from pipeline.paths import workers_data_dir

            cfg.data_dir = workers_data_dir()  # a path, or a URI each node copies
        self.cfg, self.log, self.io_dataset = cfg, log, io_dataset
        self.selection = image_selection(cfg, data.train_y, data.test_y)
        _images_file(folder, cfg, selection=self.selection, fingerprint=data.fingerprint)
        self.nets = pick_networks(cfg, self.bench)
        self.todo = [
            (h, r) for h, r in self.nets if not (folder / "networks" / h / "done.json").is_file()
        ]
        n, todo = len(self.nets), len(self.todo)
        log(f"[pretrain] {n} networks at profile {cfg.profile}: {todo} to train")
        self.refs: dict = {}
        self.done = 0
        self.failed: list[str] = []
        self.t0 = time.monotonic()
        self.busy_seconds = 0.0
        self._index: pd.DataFrame | None = None
        self._build = None  # the io_dataset task
        self.io_dataset_result: str | None = None

    @property
    def cpus_busy(self) -> float:
        """CPUs its tasks ask for now (Ray runs as many as fit)."""
        return float(len(self.refs) + (self._build is not None))

    def submit(self) -> None:
        import ray

        has_gpu = ray.cluster_resources().get("GPU", 0) > 0
        task = ray.remote(
            num_cpus=1, num_gpus=0.25 if has_gpu else 0, max_retries=1, retry_exceptions=True
        )(train_network)
        cfg_dict = self.cfg.model_dump()
        for h, _ in self.todo:
            cell = self.bench.cell(self.bench.lookup(h))
            ref = task.remote(
                h,
                list(cell.ops),
                cell.adjacency.tolist(),
                cfg_dict,
                self.folder.uri,
                self.selection,
            )
            self.refs[ref] = h

    def poll(self, timeout: float | None = 0) -> bool:
        """Collect finished networks (logged one line each); True once every network is
        done or failed, the index written and the IO-dataset (if asked for) built."""
        import ray

        while self.refs:
            ready, _ = ray.wait(list(self.refs), num_returns=1, timeout=timeout)
            if not ready:
                return False
            h = self.refs.pop(ready[0])
            try:
                rec = ray.get(ready[0])
                self.done += 1
                self.busy_seconds += float(rec.get("seconds", 0.0))
                msg = f"{h[:8]} test acc {rec['test_acc']:.2f}% in {rec['seconds']:.0f}s"
            except Exception as exc:  # noqa: BLE001 -- record and go on with the others
                self.failed.append(h)
                msg = f"{h[:8]} FAILED: {str(exc).strip().splitlines()[-1][:200]}"
            elapsed = time.monotonic() - self.t0
            finished = self.done + len(self.failed)
            eta = elapsed / finished * (len(self.todo) - finished)
            self.log(
                f"[pretrain] {msg}; {self.done}/{len(self.todo)} done, {len(self.failed)} "
                f"failed, {elapsed:.0f}s elapsed, ETA {eta:.0f}s"
            )
        if self._index is None:
            self._index = write_index(self.folder, dict(self.nets), self.bench)
            if self.io_dataset and len(self._index):
                if (self.folder / "io_dataset" / "index.parquet").is_file() and not self.todo:
                    self.io_dataset_result = str(self.folder / "io_dataset")
                else:
                    # no CPU reserved: a short step that must not wait behind the trial
                    # actors a queue keeps for reuse (they hold every CPU between trials)
                    build = ray.remote(num_cpus=0)(build_io_dataset)
                    self._build = build.remote(self.folder.uri)
                    self._build_t0 = time.monotonic()
        if self._build is not None:
            ready, _ = ray.wait([self._build], timeout=timeout)
            if not ready:
                return False
            self.io_dataset_result = ray.get(self._build)
            self.busy_seconds += time.monotonic() - self._build_t0
            self.log(f"[pretrain] IO-dataset: {self.io_dataset_result}")
            self._build = None
        return True

    def summary(self) -> dict:
        index = self._index if self._index is not None else pd.DataFrame()
        out = {
            "folder": str(self.folder),
            "networks": len(self.nets),
            "trained_now": len(self.todo) - len(self.failed),
            "failed": self.failed,
            "finished": int(len(index)),
            "mean_test_acc": float(index["test_acc"].mean()) if len(index) else float("nan"),
            "wall_seconds": round(time.monotonic() - self.t0, 1),
        }
        if self.io_dataset_result is not None:
            out["io_dataset"] = self.io_dataset_result
        return out


def build_io_dataset(folder: str) -> str:
    """``<folder>/io_dataset`` from a finished pretraining folder: its location, or why it
    was not built."""
    from pipeline.sweep.session import apply_forwarded_credentials
    from trainables.infonas.iodata import IODataError, load_io_dataset

    apply_forwarded_credentials()
    folder = Location.of(folder)
    try:
        return str(load_io_dataset(folder).save(folder / "io_dataset"))
    except IODataError as exc:
        return f"not built: {exc}"


def run_pretraining(
    config: dict,
    folder,
    address: str | None = None,
    log: Callable[[str], None] = print,
    io_dataset: bool = False,
    forward_credentials: bool = False,
) -> dict:
    """Pretrain every sampled network not yet finished in ``folder`` (a path or a URI),
    as Ray tasks (see :class:`Pretraining`)."""
    import ray

    from pipeline.sweep.session import init_ray

    run = Pretraining(config, folder, log, io_dataset=io_dataset)
    if run.todo or io_dataset:
        started = init_ray(address, forward_credentials)
        try:
            run.submit()
            run.poll(timeout=None)
        finally:
            if started:
                ray.shutdown()
    else:
        run.poll()
    return run.summary()


def start_pretraining(settings: dict, folder, *, profile: str, data_dir, log) -> Pretraining:
    """The study task (``Experiment.tasks["pretrain"]``): the pretraining of ``profile``
    (the study's settings on top) into ``folder``, with its IO-dataset, submitted now."""
    config = {"profile": profile, **settings}
    if data_dir is not None and "data_dir" not in config:
        config["data_dir"] = data_dir
    run = Pretraining(config, folder, log, io_dataset=True)
    run.submit()
    return run
