"""ProjectionExpression (and AttributesToGet): keep only some document paths of an item.

Nested paths keep their structure: ``a.b`` gives ``{"a": {"M": {"b": ...}}}`` and list elements keep their
relative order but are compacted (``a[1], a[3]`` gives a two-element list), as DynamoDB returns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from perimeterdb.dynamodb.expressions.ast import Path
from perimeterdb.dynamodb.expressions.evaluate import get_path

__all__ = ["project"]


def project(paths: Iterable[Path], item: Mapping[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The parts of ``item`` named by ``paths`` (missing paths are skipped)."""
    result: dict[str, dict[str, Any]] = {}
    nested: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for path in paths:
        elements = path.elements
        if len(elements) == 1:
            value = item.get(elements[0])  # type: ignore[call-overload]
            if value is not None:
                result[elements[0]] = value  # type: ignore[index]
            continue
        value = get_path(item, elements)
        if value is not None:
            nested.append((elements, value))
    if not nested:
        return result
    # Build a tree keyed by the original indexes, then turn index maps into compact lists.
    tree: dict[Any, Any] = {}
    for elements, value in nested:
        node = tree
        for element in elements[:-1]:
            node = node.setdefault(element, {})
        node[elements[-1]] = _Leaf(value)
    for name, subtree in tree.items():
        result[name] = _build(subtree, item[name])
    return result


class _Leaf:
    __slots__ = ("value",)

    def __init__(self, value: dict[str, Any]) -> None:
        self.value = value


def _build(node: Any, original: dict[str, Any]) -> dict[str, Any]:
    if isinstance(node, _Leaf):
        return node.value
    if "L" in original:
        elements = original["L"]
        return {"L": [_build(node[index], elements[index]) for index in sorted(node)]}
    members = original["M"]
    return {"M": {key: _build(child, members[key]) for key, child in node.items()}}
