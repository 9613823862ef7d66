"""Reading typed artifacts back from JSON: one place for the field look-up and its messages.

Each reader (``fls.evaluation.result``, ``fls.scoring.summary``, ``fls.report.inputs``,
``fls.authors.importer``) has its own error class, so a caller can tell an unreadable eval.json from an
unreadable summary.json; the helpers here take that class and give every file the same one-line messages
("<where>: missing field 'x'").
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

T = TypeVar("T", bound="FlatRecord")


def field_of(data: Any, key: str, where: str, error: type[ValueError] = ValueError) -> Any:
    """``data[key]``, or ``error`` naming ``where`` when ``data`` is no object or lacks the field."""
    if not isinstance(data, dict):
        raise error(f"{where}: expected a JSON object, got {type(data).__name__}")
    if key not in data:
        raise error(f"{where}: missing field '{key}'")
    return data[key]


def read_object(path: Path, error: type[ValueError] = ValueError) -> dict[str, Any]:
    """The JSON object in ``path``; ``error`` naming the file when it is not JSON or not an object."""
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(data, dict):
        raise error(f"{path}: expected a JSON object at top level, got {type(data).__name__}")
    return data


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
