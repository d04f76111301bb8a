"""Typed, validated configuration: errors name the source, the field and what was expected."""

from __future__ import annotations

from typing import Any, Literal, TypeVar, get_args

import pydantic

from pipeline.errors import UserError

T = TypeVar("T", bound=pydantic.BaseModel)

# Scale profiles: sizes only (epochs, sample counts); every experiment defines all three.
Profile = Literal["smoke", "cpu", "paper"]
PROFILES: tuple[str, ...] = get_args(Profile)


class ConfigError(UserError, ValueError):
    """A configuration a user wrote that cannot be used; the message says where and why."""


class StrictModel(pydantic.BaseModel):
    """Base for configs: unknown fields are errors, values are validated on assignment."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def _fields_at(model: type[pydantic.BaseModel], loc: tuple) -> list[str] | None:
    """The field names of the model at ``loc`` inside ``model`` (through lists, dicts and
    optional fields), or None where it is not a model."""
    current: Any = model
    for part in loc:
        while not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
            args = [a for a in get_args(current) if a is not type(None)]
            if not args:
                return None
            current = args[-1]  # list[X] -> X, dict[K, X] -> X, X | None -> X
            if isinstance(part, int) or not (
                isinstance(current, type) and issubclass(current, pydantic.BaseModel)
            ):
                break
        if isinstance(current, type) and issubclass(current, pydantic.BaseModel):
            if isinstance(part, str) and part in current.model_fields:
                current = current.model_fields[part].annotation
                continue
            if isinstance(part, int | str):  # a list index or a dict key: the model itself
                continue
        return None
    while not (isinstance(current, type) and issubclass(current, pydantic.BaseModel)):
        args = [a for a in get_args(current) if a is not type(None)]
        if not args:
            return None
        current = args[-1]
    return sorted(current.model_fields)


def validate(model: type[T], data: dict[str, Any], source: str = "config") -> T:
    """Validate ``data`` into ``model``; ConfigError listing every bad field otherwise."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                fields = _fields_at(model, err["loc"][:-1])
                msg = "unknown field" + (f"; expected one of {fields}" if fields else "")
            problems.append(f"{loc}: {msg} (got {err.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
