"""Reading typed artifacts back from JSON: one place for the field look-up and its messages.

Each artifact module (``fls.evaluation.result``, ``fls.scoring.summary``) has its own error class, so a
caller can tell an unreadable eval.json from an unreadable summary.json; the helpers here take that class
and give every artifact the same one-line messages ("<where>: missing field 'x'").
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="FlatRecord")


def field_of(data: Any, key: str, where: str, error: type[ValueError] = ValueError) -> Any:
    """``data[key]``, or ``error`` naming ``where`` when ``data`` is no object or lacks the field."""
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object, got {type(data).__name__}")
    if key not in data:
        raise error(f"{where}: missing field '{key}'")
    return data[key]


class FlatRecord:
    """Mixin for a dataclass whose fields are all plain JSON values: the JSON object is the fields, in order.

    A subclass sets ``file_error`` to its artifact's error class, which ``from_json`` raises.
    """

    file_error: ClassVar[type[ValueError]] = ValueError

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    @classmethod
    def from_json(cls: type[T], data: Any, where: str) -> T:
        return cls(**{f.name: field_of(data, f.name, where, cls.file_error) for f in fields(cls)})  # type: ignore[arg-type]
