"""SMT-LIB 2.6 terms as text, with constant folding, and the regular languages of IAM's wildcards.

The prover writes its problems as SMT-LIB text (QF strings, reals, integers, bit-vectors), so that any
solver that reads SMT-LIB can answer them (z3 and cvc5 run side by side, see ``solve``). A term is a
``str``; ``TRUE``/``FALSE`` fold away in ``and_``/``or_``/``not_``/``ite``, which keeps the formulas of
statements that the concrete parts of a request already decide out of the problem altogether.

Wildcard patterns become regular expressions that mirror ``perimeterdb.policy.match`` character for
character: ``*``/``?`` match any character in ``StringLike``; in ARNs they stay inside a colon-delimited
segment except in the sixth; case folding (action names, ``...IgnoreCase``, ``Bool``) accepts each
character in every case that lower-cases to it.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "FALSE",
    "TRUE",
    "and_",
    "eq",
    "fold_regex",
    "glob_re",
    "implies",
    "int_lit",
    "ite",
    "not_",
    "or_",
    "real_lit",
    "str_lit",
]

TRUE = "true"
FALSE = "false"

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 !#$%&'()*+,-./:;<=>?@[]^_`{|}~")


def str_lit(text: str) -> str:
    """An SMT-LIB string literal; every character outside a safe ASCII set as ``\\u{…}``."""
    out = []
    for ch in text:
        if ch in _SAFE:
            out.append(ch)
        else:
            out.append(f"\\u{{{ord(ch):x}}}")
    return '"' + "".join(out) + '"'


def int_lit(value: int) -> str:
    return str(value) if value >= 0 else f"(- {-value})"


def real_lit(value: Fraction | int) -> str:
    f = Fraction(value)
    num = abs(f.numerator)
    body = f"{num}.0" if f.denominator == 1 else f"(/ {num}.0 {f.denominator}.0)"
    return body if f >= 0 else f"(- {body})"


def not_(a: str) -> str:
    if a == TRUE:
        return FALSE
    if a == FALSE:
        return TRUE
    if a.startswith("(not ") and a.endswith(")"):
        inner = a[5:-1]
        if _balanced(inner):
            return inner
    return f"(not {a})"


def _balanced(text: str) -> bool:
    depth = 0
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        elif not quoted:
            if ch == "(":
                depth += 1
            elif ch == ")":
                depth -= 1
                if depth < 0:
                    return False
    return depth == 0


def _connective(op: str, unit: str, zero: str, terms: tuple[str | Iterable[str], ...]) -> str:
    """``op`` over ``terms``, simplified: ``zero`` absorbs everything, ``unit`` and repeats drop out."""
    out: list[str] = []
    seen: set[str] = set()
    for t in _flatten(terms):
        if t == zero:
            return zero
        if t == unit or t in seen:
            continue
        seen.add(t)
        out.append(t)
    if not out:
        return unit
    if len(out) == 1:
        return out[0]
    return f"({op} " + " ".join(out) + ")"


def and_(*terms: str | Iterable[str]) -> str:
    return _connective("and", TRUE, FALSE, terms)


def or_(*terms: str | Iterable[str]) -> str:
    return _connective("or", FALSE, TRUE, terms)


def _flatten(terms: tuple[str | Iterable[str], ...]) -> list[str]:
    flat: list[str] = []
    for t in terms:
        if isinstance(t, str):
            flat.append(t)
        else:
            flat.extend(t)
    return flat


def implies(a: str, b: str) -> str:
    return or_(not_(a), b)


def ite(c: str, a: str, b: str) -> str:
    if c == TRUE:
        return a
    if c == FALSE:
        return b
    if a == b:
        return a
    if a == TRUE and b == FALSE:
        return c
    if a == FALSE and b == TRUE:
        return not_(c)
    if a == TRUE:
        return or_(c, b)
    if a == FALSE:
        return and_(not_(c), b)
    if b == FALSE:
        return and_(c, a)
    if b == TRUE:
        return or_(not_(c), a)
    return f"(ite {c} {a} {b})"


def eq(a: str, b: str) -> str:
    if a == b:
        return TRUE
    if a.startswith('"') and b.startswith('"') and a.endswith('"') and b.endswith('"'):
        return FALSE  # two different literals (str_lit is canonical)
    return f"(= {a} {b})"


def xor(a: str, b: bool) -> str:
    """``a != b`` for a constant ``b``."""
    return not_(a) if b else a


# --- regular expressions -----------------------------------------------------------------------------

_ALL = "re.allchar"
_NOT_COLON = (
    '(re.union (re.range "\\u{0}" "9") (re.range ";" "\\u{2ffff}"))'  # [^:], as ranges (no complement)
)


def _re_concat(items: list[str]) -> str:
    merged: list[str] = []
    buf: list[str] = []
    for item in items:
        if item.startswith("\x00lit:"):
            buf.append(item[5:])
            continue
        if buf:
            merged.append(f"(str.to_re {str_lit(''.join(buf))})")
            buf = []
        merged.append(item)
    if buf:
        merged.append(f"(str.to_re {str_lit(''.join(buf))})")
    if not merged:
        return '(str.to_re "")'
    if len(merged) == 1:
        return merged[0]
    return "(re.++ " + " ".join(merged) + ")"


@lru_cache(maxsize=1)
def _lower_preimages() -> dict[str, tuple[str, ...]]:
    """Every character c maps to the characters x with ``x.lower() == c`` (one-character results only)."""
    table: dict[str, list[str]] = {}
    for code in range(0x30000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        x = chr(code)
        low = x.lower()
        if len(low) == 1 and low != x:
            table.setdefault(low, [low]).append(x)
    return {k: tuple(v) for k, v in table.items()}


def _folded_char(ch: str) -> str:
    """A regex for the characters whose lower case is ``ch.lower()``."""
    low = ch.lower()
    if len(low) != 1:
        return "\x00lit:" + ch
    options = _lower_preimages().get(low, (low,))
    if len(options) == 1:
        return "\x00lit:" + options[0]
    return "(re.union " + " ".join(f"(str.to_re {str_lit(o)})" for o in options) + ")"


def fold_regex(lowered: str) -> str:
    """The strings whose ``.lower()`` equals ``lowered`` (which is already lower case)."""
    return _re_concat([_folded_char(ch) for ch in lowered])


def glob_re(
    parts: Iterable[tuple[str, bool]], *, arn: bool = False, resource: bool = False, fold: bool = False
) -> str:
    """The regular language of a wildcard pattern given as (text, is_literal) parts.

    Mirrors ``policy.match.glob_regex`` (``arn=False``) and ``arn_regex`` (``arn=True``; ``resource``: the
    resource-type portion takes its wildcards literally); ``fold``: case-insensitive (the pattern is
    already lower case, as ``compile_globs`` makes it).
    """
    from perimeterdb.policy.match import resource_type_span

    chars: list[str] = []
    literal_at: list[bool] = []
    for text, literal in parts:
        chars.extend(text)
        literal_at.extend([literal] * len(text))
    type_start, type_end = resource_type_span(chars) if arn and resource else (0, 0)
    items: list[str] = []
    colons = 0
    for i, ch in enumerate(chars):
        literal = literal_at[i] or type_start <= i < type_end
        if arn and ch == ":":
            colons += 1
            items.append("\x00lit::")
        elif not literal and ch == "*":
            any_char = _ALL if (not arn or colons >= 5) else _NOT_COLON
            items.append(f"(re.* {any_char})")
        elif not literal and ch == "?":
            items.append(_ALL if (not arn or colons >= 5) else _NOT_COLON)
        elif fold:
            items.append(_folded_char(ch))
        else:
            items.append("\x00lit:" + ch)
    return _re_concat(items)


def in_re(term: str, regex: str) -> str:
    return f"(str.in_re {term} {regex})"


def concat(terms: list[str]) -> str:
    terms = [t for t in terms if t != '""']
    if not terms:
        return '""'
    if len(terms) == 1:
        return terms[0]
    return "(str.++ " + " ".join(terms) + ")"


def symbol(name: str) -> str:
    """A quoted SMT-LIB symbol for any name without ``|`` or ``\\``."""
    safe = name.replace("|", "!").replace("\\", "!")
    return f"|{safe}|"
