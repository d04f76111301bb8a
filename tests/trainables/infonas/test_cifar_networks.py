"""CIFAR-10 loading (zip, image folder, official pickles) and NAS-Bench-101 networks."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from trainables.infonas.cifar10 import (
    CLASSES,
    CifarNotFoundError,
    augment,
    decode_source,
    find_source,
    load_cifar10,
    to_tensor,
)
from trainables.infonas.nb101net import NB101Network, count_parameters, vertex_channels


def test_zip_has_every_image_with_official_class_order(cifar):
    assert cifar.train_x.shape == (50000, 32, 32, 3) and cifar.train_x.dtype == np.uint8
    assert cifar.test_x.shape == (10000, 32, 32, 3)
    assert np.bincount(cifar.train_y).tolist() == [5000] * 10
    assert np.bincount(cifar.test_y).tolist() == [1000] * 10
    # channel means of the (lossy) JPEG copy match the official ones to about 1e-3
    means = cifar.train_x.reshape(-1, 3).mean(0) / 255
    assert np.allclose(means, [0.4914, 0.4822, 0.4465], atol=2e-3)


def test_cache_is_reused(cifar, data_dir):
    again = load_cifar10(data_dir)
    assert again.fingerprint == cifar.fingerprint
    assert np.array_equal(again.test_x[:50], cifar.test_x[:50])


def _write_folder(root, x, y, split):
    from PIL import Image

    for k, (img, label) in enumerate(zip(x, y, strict=True)):
        d = root / split / CLASSES[label]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{k:04d}.png")


def test_image_folder_and_official_pickles_read_the_same_pixels(cifar, tmp_path):
    idx = np.arange(0, 50000, 2500)
    tidx = np.arange(0, 10000, 1000)
    folder = tmp_path / "data" / "cifar10"
    _write_folder(folder, cifar.train_x[idx], cifar.train_y[idx], "train")
    _write_folder(folder, cifar.test_x[tidx], cifar.test_y[tidx], "test")
    assert find_source(tmp_path / "data") == folder
    got = decode_source(folder)
    order = np.lexsort((np.arange(len(idx)), cifar.train_y[idx]))  # class, then file name
    assert np.array_equal(got["train_x"], cifar.train_x[idx][order])  # PNG: lossless
    assert np.array_equal(got["train_y"], cifar.train_y[idx][order])

    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    parts = np.array_split(idx, 5)
    for i, part in enumerate(parts, 1):
        data = cifar.train_x[part].transpose(0, 3, 1, 2).reshape(len(part), -1)
        blob = {b"data": data, b"labels": cifar.train_y[part].tolist()}
        (batches / f"data_batch_{i}").write_bytes(pickle.dumps(blob))
    data = cifar.test_x[tidx].transpose(0, 3, 1, 2).reshape(len(tidx), -1)
    (batches / "test_batch").write_bytes(
        pickle.dumps({b"data": data, b"labels": cifar.test_y[tidx].tolist()})
    )
    assert find_source(tmp_path) == batches
    got = decode_source(batches)
    assert np.array_equal(got["train_x"], cifar.train_x[idx])
    assert np.array_equal(got["test_y"], cifar.test_y[tidx])


def test_missing_cifar_is_a_clear_error(tmp_path):
    with pytest.raises(CifarNotFoundError, match="cifar-10-python.tar.gz"):
        find_source(tmp_path)


def test_augment_crops_and_flips_deterministically():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).reshape(2, 3, 32, 32)
    a = augment(x, torch.Generator().manual_seed(0))
    b = augment(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    for i in range(2):  # each output is a (possibly mirrored) 32x32 window of the padded image
        found = any(
            torch.equal(a[i], w) or torch.equal(a[i], w.flip(-1))
            for dy in range(9)
            for dx in range(9)
            for w in [padded[i, :, dy : dy + 32, dx : dx + 32]]
        )
        assert found


def test_parameter_counts_equal_the_benchmark(nb101):
    rng = np.random.default_rng(3)
    rows = rng.choice(len(nb101), 25, replace=False).tolist()
    rows.append(nb101.lookup("28cfc7874f6d200472e1a9dcd8650aa0"))  # Inception-like: 2,694,282
    for r in rows:
        net = NB101Network(nb101.cell(int(r)), stem_channels=128)
        assert count_parameters(net) == int(nb101.extra["params"].iloc[r]), nb101.cell(int(r))


def test_vertex_channels_follow_nasbench_rules():
    # input -> 1 -> 2 -> output, 1 -> output: output channels split over 1 and 2 (64 = 32+32)
    adj = [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert vertex_channels(16, 64, adj) == [16, 32, 32, 64]
    # 3 vertices feed the output: 65 = 22 + 22 + 21 (the first get the remainder)
    adj = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert vertex_channels(16, 65, adj) == [16, 22, 22, 21, 65]


def test_forward_on_real_images(nb101, cifar):
    net = NB101Network(nb101.cell(0), stem_channels=8).eval()
    x = to_tensor(cifar.test_x[:16])
    with torch.no_grad():
        logits, feats = net(x), net.features(x)
    assert logits.shape == (16, 10) and feats.shape == (16, 32)  # 4 x stem after two doublings
    assert torch.isfinite(logits).all() and (feats >= 0).all()  # pooled ReLU outputs
    assert torch.allclose(net.classifier(feats), logits, atol=1e-5)


def test_an_epochs_draws_give_the_crops_of_batch_by_batch_augmenting():
    from trainables.infonas.cifar10 import augment_draws

    x = torch.randn(10, 3, 32, 32)
    gen = torch.Generator().manual_seed(3)
    one_by_one = [augment(x[:6], gen), augment(x[6:], gen)]
    draws = augment_draws(torch.Generator().manual_seed(3), [6, 4])
    assert torch.equal(augment(x[:6], None, draws=tuple(t[:6] for t in draws)), one_by_one[0])
    assert torch.equal(augment(x[6:], None, draws=tuple(t[6:] for t in draws)), one_by_one[1])


def test_pretraining_a_network_in_bf16_on_the_cpu(tmp_path, data_dir, cifar):
    from trainables.infonas.pretrain import image_selection, make_config, train_network

    cfg = make_config({"profile": "smoke", "data_dir": str(data_dir), "precision": "bf16"})
    images = image_selection(cfg, cifar.train_y, cifar.test_y)
    ops = ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]
    adj = [[0, 1, 0, 0], [0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    rec = train_network("ab" * 16, ops, adj, cfg.model_dump(), str(tmp_path), images)
    assert rec["precision"] == "bf16" and rec["images_per_s"] > 0
    assert 0 <= rec["test_acc"] <= 100 and rec["train_loss"] == rec["train_loss"]  # not NaN
    assert (tmp_path / "networks" / ("ab" * 16) / "done.json").is_file()
