"""Apply a bound UpdateExpression to an item.

Every right-hand side is read from the item as it was before the update (``SET a = b, b = a`` swaps), list
indexes refer to positions in the original lists, ``SET`` past the end of a list appends (several appends
in index order), and ``REMOVE`` past the end is a no-op. The input item is never modified.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from perimeterdb.dynamodb import numbers
from perimeterdb.dynamodb.expressions.ast import Arith, Call, Literal, Operand, Path, UpdateExpression
from perimeterdb.dynamodb.expressions.evaluate import get_path
from perimeterdb.dynamodb.values import MAX_ITEM_SIZE, item_size, set_member_key
from perimeterdb.errors import validation

__all__ = ["UpdateResult", "apply_update"]

Item = dict[str, dict[str, Any]]

MISSING_ATTRIBUTE = "The provided expression refers to an attribute that does not exist in the item"
WRONG_TYPE = "An operand in the update expression has an incorrect data type"
INVALID_PATH = "The document path provided in the update expression is invalid for update"


@dataclass(frozen=True, slots=True)
class UpdateResult:
    """The updated item and the paths the update touched (for ReturnValues UPDATED_OLD / UPDATED_NEW)."""

    item: Item
    paths: tuple[Path, ...]


def apply_update(
    update: UpdateExpression, item: Mapping[str, Any] | None, key: Mapping[str, Any] | None = None
) -> UpdateResult:
    """Apply a bound update to ``item`` (``None`` when the item does not exist yet, in which case the
    update starts from ``key``, the new item's key attributes)."""
    exists = item is not None
    old: Mapping[str, Any] = item if item is not None else (key or {})
    # 1. Read every SET value from the old item.
    values = [_set_value(action.value, old) for action in update.sets]
    doc = _Document(dict(old), exists)
    # 2. Write.
    for action, value in zip(update.sets, values, strict=True):
        doc.set(action.path.elements, value)
    for action in update.adds:
        assert isinstance(action.value, Literal)
        doc.add(action.path.elements, action.value.value)
    for action in update.deletes:
        assert isinstance(action.value, Literal)
        doc.delete(action.path.elements, action.value.value)
    for action in update.removes:
        doc.remove(action.path.elements)
    doc.finish()
    if item_size(doc.root) > MAX_ITEM_SIZE:
        raise validation("Item size to update has exceeded the maximum allowed size")
    return UpdateResult(doc.root, update.paths())


# --- reading values ---------------------------------------------------------------------------------------


def _set_value(value: Operand | Arith, item: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, Arith):
        left = _operand(value.left, item)
        right = _operand(value.right, item)
        if "N" not in left or "N" not in right:
            raise validation(WRONG_TYPE)
        a, b = Decimal(left["N"]), Decimal(right["N"])
        result = numbers.add(a, b) if value.op == "+" else numbers.subtract(a, b)
        return {"N": numbers.format_number(result)}
    return _operand(value, item)


def _operand(operand: Operand, item: Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(operand, Literal):
        return operand.value
    if isinstance(operand, Path):
        found = get_path(item, operand.elements)
        if found is None:
            raise validation(MISSING_ATTRIBUTE)
        return found
    if isinstance(operand, Call):
        if operand.name == "if_not_exists":
            target = operand.args[0]
            assert isinstance(target, Path)
            found = get_path(item, target.elements)
            return found if found is not None else _operand(operand.args[1], item)
        if operand.name == "list_append":
            first = _operand(operand.args[0], item)
            second = _operand(operand.args[1], item)
            if "L" not in first or "L" not in second:
                raise validation(WRONG_TYPE)
            return {"L": [*first["L"], *second["L"]]}
    raise TypeError(f"cannot evaluate {operand!r} in an update")


# --- writing ----------------------------------------------------------------------------------------------


class _Document:
    """Copy-on-write view of the item being updated."""

    def __init__(self, root: Item, exists: bool) -> None:
        self.root = root
        self.exists = exists
        self.copied: set[int] = {id(root)}
        self.appends: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = {}
        self.removals: dict[tuple[Any, ...], list[int]] = {}

    def _own(self, container: Any) -> Any:
        """Return a private copy of a nested container (once per container)."""
        if id(container) in self.copied:
            return container
        clone = dict(container) if isinstance(container, dict) else list(container)
        self.copied.add(id(clone))
        return clone

    def _parent(self, elements: tuple[Any, ...], *, for_write: bool) -> Any:
        """The container (dict of attributes, M dict, or L list) holding the last element of the path.

        Returns None when the path cannot be followed (missing step or wrong type).
        """
        container: Any = self.root
        for element in elements[:-1]:
            if isinstance(element, int):
                if not isinstance(container, list) or element >= len(container):
                    return None
                child = container[element]
            else:
                if not isinstance(container, dict) or element not in container:
                    return None
                child = container[element]
            # child is a wire value {"M": {...}} or {"L": [...]}
            kind = "L" if "L" in child else ("M" if "M" in child else None)
            if kind is None:
                return None
            if for_write:
                value = self._own(child)
                inner = self._own(value[kind])
                value[kind] = inner
                container[element] = value
                container = inner
            else:
                container = child[kind]
        last = elements[-1]
        if isinstance(last, int) and not isinstance(container, list):
            return None
        if isinstance(last, str) and not isinstance(container, dict):
            return None
        return container

    def get(self, elements: tuple[Any, ...]) -> dict[str, Any] | None:
        container = self._parent(elements, for_write=False)
        if container is None:
            if len(elements) > 1:
                raise validation(INVALID_PATH)
            return None
        last = elements[-1]
        if isinstance(last, int):
            return container[last] if last < len(container) else None
        result: dict[str, Any] | None = container.get(last)
        return result

    def set(self, elements: tuple[Any, ...], value: dict[str, Any]) -> None:
        container = self._parent(elements, for_write=True)
        if container is None:
            raise validation(INVALID_PATH)
        last = elements[-1]
        if isinstance(last, int) and last >= len(container):
            self.appends.setdefault(elements[:-1], []).append((last, value))
            return
        container[last] = value

    def remove(self, elements: tuple[Any, ...]) -> None:
        if len(elements) == 1:
            self.root.pop(elements[0], None)
            return
        if not self.exists:
            return  # DynamoDB ignores REMOVE of a nested path when the item does not exist
        container = self._parent(elements, for_write=False)
        if container is None:
            raise validation(INVALID_PATH)
        last = elements[-1]
        if isinstance(last, int):
            if last < len(container):
                self.removals.setdefault(elements[:-1], []).append(last)
            return
        if last in container:
            writable = self._parent(elements, for_write=True)
            del writable[last]

    def add(self, elements: tuple[Any, ...], operand: dict[str, Any]) -> None:
        current = self.get(elements)
        kind, raw = next(iter(operand.items()))
        if current is None:
            self.set(elements, operand)
            return
        current_kind, current_raw = next(iter(current.items()))
        if kind == "N":
            if current_kind != "N":
                raise validation(WRONG_TYPE)
            total = numbers.add(Decimal(current_raw), Decimal(raw))
            self.set(elements, {"N": numbers.format_number(total)})
            return
        if current_kind != kind:
            raise validation(WRONG_TYPE)
        present = {set_member_key(kind, m) for m in current_raw}
        merged = list(current_raw)
        for member in raw:
            key = set_member_key(kind, member)
            if key not in present:
                present.add(key)
                merged.append(member)
        self.set(elements, {kind: merged})

    def delete(self, elements: tuple[Any, ...], operand: dict[str, Any]) -> None:
        current = self.get(elements)
        if current is None:
            return
        kind, raw = next(iter(operand.items()))
        current_kind, current_raw = next(iter(current.items()))
        if current_kind != kind:
            raise validation(WRONG_TYPE)
        doomed = {set_member_key(kind, m) for m in raw}
        kept = [m for m in current_raw if set_member_key(kind, m) not in doomed]
        if kept:
            self.set(elements, {kind: kept})
        elif len(elements) == 1:
            self.root.pop(elements[0], None)
        else:
            writable = self._parent(elements, for_write=True)
            last = elements[-1]
            if isinstance(last, int):
                self.removals.setdefault(elements[:-1], []).append(last)
            else:
                del writable[last]

    def finish(self) -> None:
        for list_path, entries in self.appends.items():
            target = self._list_at(list_path)
            for _, value in sorted(entries, key=lambda entry: entry[0]):
                target.append(value)
        for list_path, indexes in self.removals.items():
            target = self._list_at(list_path)
            for index in sorted(set(indexes), reverse=True):
                del target[index]

    def _list_at(self, list_path: tuple[Any, ...]) -> list[Any]:
        holder = self._parent((*list_path, 0), for_write=True)
        assert isinstance(holder, list)
        return holder
