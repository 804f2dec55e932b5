"""Policy variables: ``${aws:username}``, ``${aws:PrincipalTag/team, 'default'}``, ``${*}``, ``${?}``, ``${$}``.

A string is parsed once into parts: text the author wrote (where ``*``/``?`` keep their wildcard meaning
in Like operators and Resource), variable references, and literal characters from ``${*}``/``${?}``/
``${$}``. Rendering against a request substitutes values as *literal* text (a ``*`` inside a tag value
is not a wildcard).

Rules (IAM User Guide, reference_policies_variables, current text):
- Variables exist only under ``"Version": "2012-10-17"``; otherwise ``${aws:username}`` is literal text
  (the caller simply does not parse templates for such policies).
- Key names are case-insensitive.
- "You can't use a multivalued condition key as a variable": a list value counts as no value.
- A variable without value (and without default) renders to ``None``: the Resource pattern then matches
  nothing, and the policy value matches nothing in a condition (so positive operators do not match and
  negated operators do).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Literal", "Part", "Var", "has_variables", "parse_template", "render"]

_INNER_RE = re.compile(r"^\s*([^\s,{}']+)\s*(?:,\s*'([^']*)'\s*)?$")
_SPECIAL = {"*": "*", "?": "?", "$": "$"}


@dataclass(frozen=True, slots=True)
class Var:
    key: str  # lower-cased context key name
    default: str | None = None


@dataclass(frozen=True, slots=True)
class Literal:
    """Text that must be matched literally even in a wildcard pattern (``${*}`` and friends)."""

    text: str


Part = str | Var | Literal
Lookup = Callable[[str], "str | tuple[str, ...] | None"]


def has_variables(text: str) -> bool:
    return "${" in text


def parse_template(text: str) -> tuple[Part, ...]:
    """Split ``text`` into author text, variables and literals. Malformed ``${...}`` stays as text."""
    parts: list[Part] = []
    buf: list[str] = []
    i, n = 0, len(text)
    while i < n:
        start = text.find("${", i)
        if start < 0:
            buf.append(text[i:])
            break
        end = text.find("}", start + 2)
        if end < 0:
            buf.append(text[i:])
            break
        buf.append(text[i:start])
        inner = text[start + 2 : end]
        if inner in _SPECIAL:
            if buf:
                parts.append("".join(buf))
                buf = []
            parts.append(Literal(_SPECIAL[inner]))
        else:
            m = _INNER_RE.match(inner)
            if m is None:
                buf.append(text[start : end + 1])
            else:
                if buf:
                    parts.append("".join(buf))
                    buf = []
                parts.append(Var(m.group(1).lower(), m.group(2)))
        i = end + 1
    tail = "".join(buf)
    if tail:
        parts.append(tail)
    return tuple(p for p in parts if p != "")


def render(parts: tuple[Part, ...], lookup: Lookup) -> list[tuple[str, bool]] | None:
    """Substitute variables. Returns ``[(text, is_literal)]`` or ``None`` if a variable has no value."""
    out: list[tuple[str, bool]] = []
    for part in parts:
        if isinstance(part, str):
            out.append((part, False))
        elif isinstance(part, Literal):
            out.append((part.text, True))
        else:
            value = lookup(part.key)
            if isinstance(value, tuple):
                value = None
            if value is None:
                if part.default is None:
                    return None
                value = part.default
            out.append((value, True))
    return out


def render_plain(parts: tuple[Part, ...], lookup: Lookup) -> str | None:
    """Render to one string (for operators without wildcards)."""
    rendered = render(parts, lookup)
    if rendered is None:
        return None
    return "".join(text for text, _ in rendered)
