"""Command-line options generated from a pydantic Config: one ``--field-name`` per field,
with the field's description, default, choices and the profiles' values in its help.

Values (``--lambda 0.1``, ``--max-train-cells null``, ``--cnn-channels '[16, 32]'``) are
read as YAML, except that string fields take the text as it is and integers are decimal
(:func:`yaml_value`), then validated by the Config itself, so the command line accepts
what a sweep file accepts and reports errors the same way. Options left
out are not set: the profile's value, then the Config's default, applies.
"""

from __future__ import annotations

import argparse
import re
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


def _is_text(annotation) -> bool:
    """A field whose values are strings (``str``, a Literal of strings, or either | None)."""
    args = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    return all(
        a is str
        or (
            typing.get_origin(a) is typing.Literal
            and all(isinstance(v, str) for v in typing.get_args(a))
        )
        for a in args
    )


def yaml_value(option: str, text: str, annotation=None) -> Any:
    """The value of an option: ``null`` is None; text as it is for a string field (``no``,
    ``#top`` and ``010`` stay text); integers in decimal (``010`` is 10); else YAML
    (numbers, booleans, lists)."""
    if text.strip().lower() in ("null", "none"):
        return None
    if annotation is not None and _is_text(annotation):
        return text
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return int(text)
    try:
        return (
            float(text)
            if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)", text.strip())
            else yaml.safe_load(text)
        )
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


def config_from_args(
    args: argparse.Namespace, keys: list[str], config: type[pydantic.BaseModel]
) -> dict[str, Any]:
    """The fields the user set on the command line (see :func:`yaml_value`)."""
    annotations = {field_name(n, i): i.annotation for n, i in config.model_fields.items()}
    out = {}
    for key in keys:
        text = getattr(args, f"cfg__{key}", None)
        if text is not None:
            out[key] = yaml_value("--" + key.replace("_", "-"), text, annotations.get(key))
    return out
