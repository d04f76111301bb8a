"""Command-line options generated from a pydantic Config: one ``--field-name`` per field,
with the field's description, default, choices and the profiles' values in its help.

Every value is read as YAML (``--lambda 0.1``, ``--max-train-cells null``,
``--cnn-channels '[16, 32]'``) and validated by the Config itself, so the command line
accepts exactly what a sweep file accepts and reports errors the same way. Options left
out are not set: the profile's value, then the Config's default, applies.
"""

from __future__ import annotations

import argparse
import typing
from collections.abc import Mapping
from typing import Any

import pydantic
import yaml

from pipeline.errors import UserError


def _choices(annotation) -> list[str]:
    """The literal values of a ``Literal[...]`` (or ``Literal[...] | None``) annotation."""
    out: list[str] = []
    for arg in typing.get_args(annotation) or ():
        if typing.get_origin(arg) is typing.Literal:
            out += [str(a) for a in typing.get_args(arg)]
        elif isinstance(arg, str | int | float | bool) and not isinstance(arg, type):
            out.append(str(arg))
    if typing.get_origin(annotation) is typing.Literal:
        out = [str(a) for a in typing.get_args(annotation)]
    return out


def field_name(name: str, info: pydantic.fields.FieldInfo) -> str:
    """The key users write (the alias where there is one: ``lambda``)."""
    return info.alias or name


def yaml_value(option: str, text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UserError(f"{option}: not a valid value ({exc})") from None


def add_config_options(
    parser: argparse.ArgumentParser,
    config: type[pydantic.BaseModel],
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[str]:
    """One option per field of ``config``; returns the config keys in order."""
    keys = []
    for name, info in config.model_fields.items():
        key = field_name(name, info)
        keys.append(key)
        parts = [info.description or ""]
        choices = _choices(info.annotation)
        if choices:
            parts.append("one of " + ", ".join(choices))
        if not info.is_required():
            parts.append(f"default {info.get_default(call_default_factory=True)!r}")
        by_profile = {p: v[key] for p, v in (profiles or {}).items() if key in v}
        if by_profile:
            parts.append("profiles: " + ", ".join(f"{p} {v!r}" for p, v in by_profile.items()))
        parser.add_argument(
            "--" + key.replace("_", "-"),
            dest=f"cfg__{key}",
            default=None,
            metavar=choices and "{" + ",".join(choices) + "}" or key.upper(),
            help="; ".join(p for p in parts if p).replace("%", "%%"),
        )
    return keys


def config_from_args(args: argparse.Namespace, keys: list[str]) -> dict[str, Any]:
    """The fields the user set on the command line, values read as YAML."""
    out = {}
    for key in keys:
        text = getattr(args, f"cfg__{key}", None)
        if text is not None:
            out[key] = yaml_value("--" + key.replace("_", "-"), text)
    return out
