"""The typed config of Info-NAS pretraining and its scale profiles."""

from __future__ import annotations

from typing import Literal

import pydantic

from pipeline.config import Profile, StrictModel
from pipeline.experiment import make_config as build_config

PROFILES: dict[str, dict] = {
    # seconds a network: CI
    "smoke": {
        "train_networks": 2,
        "valid_networks": 1,
        "epochs": 1,
        "stem_channels": 8,
        "train_images": 512,
        "io_images": 64,
        "test_images": 64,
        "eval_images": 512,
    },
    # about a minute a network on a laptop core
    "cpu": {
        "train_networks": 6,
        "valid_networks": 2,
        "epochs": 2,
        "stem_channels": 16,
        "train_images": 5000,
        "io_images": 200,
        "test_images": 200,
        "eval_images": 2000,
    },
    # the paper: 608 + 77 networks, 12 epochs, full width, 1,000 IO and 2,000 test images
    "paper": {
        "train_networks": 608,
        "valid_networks": 77,
        "epochs": 12,
        "stem_channels": 128,
        "train_images": None,
        "io_images": 1000,
        "test_images": 2000,
        "eval_images": None,
    },
}


class PretrainConfig(StrictModel):
    profile: Profile = "cpu"
    data_dir: str | None = None
    train_networks: int = pydantic.Field(608, ge=1)
    valid_networks: int = pydantic.Field(77, ge=0)
    epochs: int = pydantic.Field(12, ge=1)
    batch_size: int = pydantic.Field(128, ge=1)
    lr: float = pydantic.Field(0.025, gt=0)
    momentum: float = pydantic.Field(0.9, ge=0, lt=1)
    weight_decay: float = pydantic.Field(1e-4, ge=0)
    grad_clip: float = pydantic.Field(5.0, gt=0)
    stem_channels: int = pydantic.Field(128, ge=1)
    num_stacks: int = pydantic.Field(3, ge=1)
    cells_per_stack: int = pydantic.Field(3, ge=1)
    train_images: int | None = pydantic.Field(None, ge=1, description="None: all the rest")
    io_images: int = pydantic.Field(1000, ge=1, description="held-out training images")
    test_images: int = pydantic.Field(2000, ge=1, description="'unseen' test images")
    eval_images: int | None = pydantic.Field(None, ge=1, description="test accuracy; None=all")
    valid_fraction: float = pydantic.Field(0.1, gt=0, lt=1, description="space split")
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    precision: Literal["auto", "fp32", "bf16"] = pydantic.Field(
        "auto", description="auto: bf16 autocast and channels_last on CUDA, fp32 on the CPU"
    )


def make_config(data: dict, source: str = "pretrain config") -> PretrainConfig:
    """The validated config: the profile's values, then ``data`` (the shared rule)."""
    return build_config(PretrainConfig, PROFILES, data, source)
