"""Read back the terms the prover writes, and evaluate them in a solver's model.

Only what ``request`` builds for principals and keys: symbols, string/numeric literals, ``str.++``,
``and``, ``or``, ``not``, ``=``. Used to turn a model into a concrete request.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["evaluate", "parse"]

_TOKEN = re.compile(r'\s*(?:(\()|(\))|("(?:[^"]|"")*")|(\|[^|]*\|)|([^\s()|"]+))')
_ESCAPE = re.compile(r"\\u\{([0-9a-fA-F]{1,5})\}")


def parse(text: str) -> Any:
    stack: list[list[Any]] = [[]]
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            break
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            done = stack.pop()
            stack[-1].append(done)
        elif m.group(3):
            body = m.group(3)[1:-1].replace('""', '"')
            stack[-1].append(("str", _ESCAPE.sub(lambda e: chr(int(e.group(1), 16)), body)))
        elif m.group(4):
            stack[-1].append(("sym", m.group(4)[1:-1]))
        else:
            stack[-1].append(("sym", m.group(5)))
    return stack[0][0]


def evaluate(term: str, model: dict[str, Any]) -> Any:
    return _eval(parse(term), model)


def _eval(node: Any, model: dict[str, Any]) -> Any:
    if isinstance(node, tuple):
        kind, value = node
        if kind == "str":
            return value
        if value == "true":
            return True
        if value == "false":
            return False
        if value.lstrip("-").isdigit():
            return int(value)
        return model.get(value, "")  # absent from the model: unconstrained ("" is also false)
    head = node[0][1]
    args = [_eval(a, model) for a in node[1:]]
    if head == "str.++":
        return "".join(str(a) for a in args)
    if head == "and":
        return all(args)
    if head == "or":
        return any(args)
    if head == "not":
        return not args[0]
    if head == "=":
        return args[0] == args[1]
    raise ValueError(f"cannot evaluate {head}")
