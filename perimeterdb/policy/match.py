"""Wildcard matching for actions, resources, principals and ARN/string condition values.

Case rules (IAM User Guide):
- action names (``service:Action``) are case-insensitive ("iam:ListAccessKeys is the same as
  IAM:listaccesskeys"), ``*`` and ``?`` anywhere;
- ARNs are case-sensitive (section 8 #6: AWS's well-known behaviour; the retrieved docs do not say it in
  so many words for ``Resource``, they do for ARN/String condition operators);
- in an ARN pattern, ``*``/``?`` stay inside one colon-delimited segment, except in the last (resource)
  segment where ``*`` also crosses ``/`` and ``:`` ("DOC-EXAMPLE-BUCKET/*/test/*" matches
  "DOC-EXAMPLE-BUCKET/1/2/test/3/object.jpg"); ``Arn*`` condition operators check "each of the six
  colon-delimited components ... separately";
- ``StringLike``: ``*`` and ``?`` match any characters, ``:`` and ``/`` included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = [
    "GlobSet",
    "arn_regex",
    "compile_arns",
    "compile_globs",
    "glob_regex",
    "has_wildcards",
    "resource_type_span",
]


def has_wildcards(text: str) -> bool:
    return "*" in text or "?" in text


def _without_backtracking(out: list[str], stars: list[int]) -> str:
    """Join regex pieces where ``out[i]`` for ``i`` in ``stars`` is a ``*`` wildcard (``.*`` or ``[^:]*``)
    so that the match takes time linear in the value's length per wildcard, never exponential.

    Read literally, ``*a*a*a*a*b`` as ``.*a.*a.*a.*a.*b`` backtracks through every way of placing each
    ``a``: 8 s against 200 characters, hours against a 300-character User-Agent, with the server's event
    loop held all along (a policy's author and any caller it applies to could freeze the server). Between
    two wildcards lies a fixed-length piece (literals, ``?``), and if the value matches at all it matches
    with each such piece at its leftmost place after the previous one (it then ends earliest, leaving the
    most for what follows; an ARN segment's ``[^:]*`` cannot pass a colon, so every candidate place lies in
    the same segment). So every wildcard but the last is a lazy wildcard in an atomic group with the piece
    after it, ``(?>.*?a)``, tried once and never revisited; the last stays ``.*``. Same matches as before.
    """
    if len(stars) < 2:
        return "".join(out)
    last = stars[-1]
    star_at = set(stars)
    pieces: list[str] = []
    open_group = False
    for i, piece in enumerate(out):
        if i in star_at:
            if open_group:
                pieces.append(")")
                open_group = False
            if i != last:
                pieces.append("(?>" + piece + "?")
                open_group = True
                continue
        pieces.append(piece)
    return "".join(pieces)


def glob_regex(parts: Iterable[tuple[str, bool]]) -> str:
    """Regex source for a ``StringLike`` pattern made of (text, is_literal) parts."""
    out: list[str] = []
    stars: list[int] = []
    for text, literal in parts:
        if literal:
            out.append(re.escape(text))
            continue
        for ch in text:
            if ch == "*":
                stars.append(len(out))
                out.append(".*")
            elif ch == "?":
                out.append(".")
            else:
                out.append(re.escape(ch))
    return _without_backtracking(out, stars)


def resource_type_span(chars: list[str]) -> tuple[int, int]:
    """[start, end) of the resource-type portion of an ARN pattern, or (0, 0) if it has none.

    ARN reference: "You cannot use a wildcard in the portion of the ARN that specifies the resource
    type". The type is the text of the sixth segment before its first ``/`` or ``:`` (``table`` in
    ``table/orders``); a sixth segment without a delimiter (``*``, ``my-topic``) names no type, and S3's
    resource part (``bucket/key``) has none either.
    """
    colons = [i for i, ch in enumerate(chars) if ch == ":"]
    if len(colons) < 5:
        return (0, 0)
    service = "".join(chars[colons[1] + 1 : colons[2]]) if len(colons) >= 3 else ""
    if service == "s3":
        return (0, 0)
    start = colons[4] + 1
    for i in range(start, len(chars)):
        if chars[i] in "/:":
            return (start, i)
    return (0, 0)


def arn_regex(parts: Iterable[tuple[str, bool]], *, resource: bool = False) -> str:
    """Regex source for an ARN pattern: wildcards stay within a segment except in the sixth.

    ``resource``: a Resource element pattern, where a wildcard in the resource-type portion is a literal
    character (so the pattern matches no real ARN), per the ARN reference.
    """
    chars: list[str] = []
    literal_at: list[bool] = []
    for text, literal in parts:
        chars.extend(text)
        literal_at.extend([literal] * len(text))
    type_start, type_end = resource_type_span(chars) if resource else (0, 0)
    out: list[str] = []
    stars: list[int] = []
    colons = 0
    for i, ch in enumerate(chars):
        literal = literal_at[i] or type_start <= i < type_end
        if ch == ":":
            colons += 1
            out.append(":")
        elif not literal and ch == "*":
            stars.append(len(out))
            out.append(".*" if colons >= 5 else "[^:]*")
        elif not literal and ch == "?":
            out.append("." if colons >= 5 else "[^:]")
        else:
            out.append(re.escape(ch))
    return _without_backtracking(out, stars)


@lru_cache(maxsize=8192)
def compiled(source: str, ignore_case: bool = False) -> re.Pattern[str]:
    flags = re.DOTALL | (re.IGNORECASE if ignore_case else 0)
    return re.compile(source, flags)


class GlobSet:
    """A precompiled OR of patterns: exact values in a set, wildcard patterns in one regex."""

    __slots__ = ("exact", "fold", "match_all", "regex")

    def __init__(self, exact: frozenset[str], regex: re.Pattern[str] | None, match_all: bool, fold: bool):
        self.exact = exact
        self.regex = regex
        self.match_all = match_all
        self.fold = fold

    def __call__(self, value: str) -> bool:
        if self.match_all:
            return True
        if self.fold:
            value = value.lower()
        if value in self.exact:
            return True
        regex = self.regex
        return regex is not None and regex.fullmatch(value) is not None

    def __repr__(self) -> str:
        return f"GlobSet(exact={sorted(self.exact)!r}, regex={self.regex.pattern if self.regex else None!r})"


def compile_globs(patterns: Iterable[str], *, ignore_case: bool, arn: bool = False) -> GlobSet:
    """Compile patterns where ``*`` matches everything, ``?`` one character (ARN-aware if ``arn``)."""
    exact: set[str] = set()
    sources: list[str] = []
    match_all = False
    for pattern in patterns:
        p = pattern.lower() if ignore_case else pattern
        if p == "*":
            match_all = True
        elif has_wildcards(p):
            sources.append(arn_regex([(p, False)], resource=True) if arn else glob_regex([(p, False)]))
        else:
            exact.add(p)
    regex = compiled("|".join(f"(?:{s})" for s in sources)) if sources else None
    return GlobSet(frozenset(exact), regex, match_all, ignore_case)


def compile_arns(patterns: Iterable[str]) -> GlobSet:
    """Resource ARN patterns: case-sensitive, segment-aware, ``"*"`` matches every resource."""
    return compile_globs(patterns, ignore_case=False, arn=True)
