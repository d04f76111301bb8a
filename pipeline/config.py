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
                msg = f"unknown field; expected one of {sorted(model.model_fields)}"
            problems.append(f"{loc}: {msg} (got {err.get('input')!r})")
        raise ConfigError(f"{source}: " + "; ".join(problems)) from None
