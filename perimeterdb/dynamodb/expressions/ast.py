"""The expression AST, shared by every expression kind, the legacy converters and the evaluator.

Parsing produces nodes whose paths may hold ``#name`` placeholders (``Path.elements`` entries that are
``Placeholder``) and whose values are ``ValueRef`` (``:value``). ``resolve`` produces the same node types
with placeholders replaced by real names (plain ``str``) and values replaced by ``Literal``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "And",
    "Arith",
    "Between",
    "Call",
    "Comparison",
    "Condition",
    "In",
    "Literal",
    "Not",
    "Operand",
    "Or",
    "Path",
    "PathElement",
    "Placeholder",
    "SetAction",
    "UpdateAction",
    "UpdateExpression",
    "ValueRef",
    "path_text",
]


@dataclass(frozen=True, slots=True)
class Placeholder:
    """An unresolved ``#name`` path element."""

    name: str


PathElement = str | int | Placeholder


@dataclass(frozen=True, slots=True)
class Path:
    """A document path: attribute names (``str``) and list indexes (``int``)."""

    elements: tuple[PathElement, ...]


@dataclass(frozen=True, slots=True)
class ValueRef:
    """An unresolved ``:value`` reference."""

    name: str


@dataclass(frozen=True, slots=True)
class Literal:
    """A resolved constant, in wire form (``{"S": "x"}``); ``name`` is the ``:value`` it came from, if any
    (it lets a bound expression be reused with another request's values: ``rebind.py``)."""

    value: dict[str, Any]
    name: str | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Call:
    """A function call: ``size(a)``, ``begins_with(a, :v)``, ``if_not_exists(a, :v)``..."""

    name: str
    args: tuple[Operand | Call, ...]


Operand = Path | ValueRef | Literal | Call


@dataclass(frozen=True, slots=True)
class Comparison:
    op: str  # "=", "<>", "<", "<=", ">", ">="
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class Between:
    operand: Operand
    low: Operand
    high: Operand


@dataclass(frozen=True, slots=True)
class In:
    operand: Operand
    options: tuple[Operand, ...]


@dataclass(frozen=True, slots=True)
class And:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Or:
    left: Condition
    right: Condition


@dataclass(frozen=True, slots=True)
class Not:
    operand: Condition


Condition = Comparison | Between | In | And | Or | Not | Call


@dataclass(frozen=True, slots=True)
class Arith:
    """``left + right`` or ``left - right`` on the right-hand side of a SET action."""

    op: str
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class SetAction:
    path: Path
    value: Operand | Arith


@dataclass(frozen=True, slots=True)
class UpdateAction:
    """A REMOVE (``value`` is ``None``), ADD or DELETE action."""

    kind: str  # "REMOVE", "ADD", "DELETE"
    path: Path
    value: ValueRef | Literal | None = None


@dataclass(frozen=True, slots=True)
class UpdateExpression:
    sets: tuple[SetAction, ...] = ()
    removes: tuple[UpdateAction, ...] = ()
    adds: tuple[UpdateAction, ...] = ()
    deletes: tuple[UpdateAction, ...] = ()
    order: tuple[Path, ...] = ()  # every modified path, in text order

    def paths(self) -> tuple[Path, ...]:
        """Every modified path, in the order the text names them."""
        return self.order


def path_text(elements: tuple[PathElement, ...]) -> str:
    """Render a path the way DynamoDB does in messages: ``[a, b, [3]]``."""
    parts = []
    for element in elements:
        if isinstance(element, int):
            parts.append(f"[{element}]")
        elif isinstance(element, Placeholder):
            parts.append(element.name)
        else:
            parts.append(element)
    return "[" + ", ".join(parts) + "]"
