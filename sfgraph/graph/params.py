"""Declared node parameters: type, default, range, unit, and whether they change live."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_REQUIRED = object()

PARAM_TYPES = (
    "float", "int", "bool", "str", "path", "list[float]", "list[bool]", "list[str]", "mapping",
)


class ParamError(ValueError):
    """A parameter value does not fit its declaration."""


@dataclass(frozen=True)
class Param:
    """Declaration of one node parameter.

    ``type`` is one of ``PARAM_TYPES``; ``range`` bounds numbers (and every item of a
    number list), inclusive; ``choices`` restricts strings; ``live`` says the value may
    change while a graph runs (from MIDI or the terminal). ``default=None`` means the
    parameter is optional with no value.
    """

    type: str
    default: Any = _REQUIRED
    doc: str = ""
    unit: str = ""
    range: tuple[float | None, float | None] | None = None
    choices: tuple[str, ...] | None = None
    live: bool = False

    def __post_init__(self):
        if self.type not in PARAM_TYPES:
            raise ValueError(f"unknown param type {self.type!r}; expected one of {PARAM_TYPES}")

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def coerce(self, value: Any) -> Any:
        """Return ``value`` converted to this parameter's type, or raise ParamError."""
        if value is None:
            if self.default is None:
                return None
            raise ParamError(f"expected {self.type}, got nothing")
        if self.type.startswith("list["):
            item_type = self.type[5:-1]
            if not isinstance(value, (list, tuple)):
                raise ParamError(f"expected a list of {item_type}, got {_show(value)}")
            return [self._coerce_scalar(item_type, v, f"item {i}: ") for i, v in enumerate(value)]
        if self.type == "mapping":
            if not isinstance(value, dict):
                raise ParamError(f"expected a mapping, got {_show(value)}")
            return dict(value)
        return self._coerce_scalar(self.type, value, "")

    def _coerce_scalar(self, kind: str, value: Any, prefix: str) -> Any:
        if kind == "bool":
            if not isinstance(value, bool):
                raise ParamError(f"{prefix}expected true or false, got {_show(value)}")
            return value
        if kind in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ParamError(f"{prefix}expected a number ({kind}), got {_show(value)}")
            if kind == "int" and not float(value).is_integer():
                raise ParamError(f"{prefix}expected a whole number, got {value}")
            value = int(value) if kind == "int" else float(value)
            if self.range is not None:
                lo, hi = self.range
                if (lo is not None and value < lo) or (hi is not None and value > hi):
                    raise ParamError(
                        f"{prefix}{value:g} is out of range [{_bound(lo)}, {_bound(hi)}]"
                        + (f" {self.unit}" if self.unit else ""))
            return value
        if not isinstance(value, str):
            raise ParamError(f"{prefix}expected a string, got {_show(value)}")
        if self.choices is not None and value not in self.choices:
            raise ParamError(f"{prefix}{value!r} is not one of {', '.join(self.choices)}")
        return value

    def describe(self) -> str:
        parts = [self.type]
        if self.unit:
            parts.append(f"[{self.unit}]")
        if self.range is not None:
            parts.append(f"range [{_bound(self.range[0])}, {_bound(self.range[1])}]")
        if self.choices:
            parts.append("one of " + "|".join(self.choices))
        parts.append("required" if self.required else f"default {self.default!r}")
        if self.live:
            parts.append("live")
        return ", ".join(parts)


def _bound(b) -> str:
    return "-inf" if b is None else f"{b:g}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."
