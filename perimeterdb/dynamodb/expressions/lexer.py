"""Tokens of DynamoDB's expression language, and the text of its syntax errors.

Token kinds: ``NAME`` (``[A-Za-z][A-Za-z0-9_]*``), ``HASH`` (``#`` then at least one ``[A-Za-z0-9_]``),
``VALUE`` (``:`` then at least one ``[A-Za-z0-9_]``), ``NUMBER`` (digits), ``OP`` (punctuation) and
``OTHER`` (any other single character, which no rule accepts). Whitespace is space, tab, CR and LF.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["EOF", "Token", "syntax_error_message", "tokenize"]

_TOKEN_RE = re.compile(
    r"[ \t\r\n]*(?:"
    r"(?P<NAME>[A-Za-z][A-Za-z0-9_]*)"
    r"|(?P<HASH>\#[A-Za-z0-9_]+)"
    r"|(?P<VALUE>:[A-Za-z0-9_]+)"
    r"|(?P<NUMBER>[0-9]+)"
    r"|(?P<OP><>|<=|>=|[=<>()\[\],.+\-])"
    r"|(?P<OTHER>.)"
    r")",
    re.S,
)
_TRAILING_SPACE_RE = re.compile(r"[ \t\r\n]*\Z")

EOF = "EOF"


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


def tokenize(text: str) -> list[Token]:
    """Split an expression into tokens; the list always ends with an ``EOF`` token."""
    tokens: list[Token] = []
    pos = 0
    length = len(text)
    while True:
        if _TRAILING_SPACE_RE.match(text, pos):
            break
        match = _TOKEN_RE.match(text, pos)
        assert match is not None  # OTHER matches any character
        kind = match.lastgroup or "OTHER"
        start = match.start(kind)
        tokens.append(Token(kind, match.group(kind), start, match.end()))
        pos = match.end()
    tokens.append(Token(EOF, "<EOF>", length, length))
    return tokens


def syntax_error_message(text: str, tokens: list[Token], index: int) -> str:
    """``Syntax error; token: "X", near: "Y"`` where Y spans the previous token to the next one."""
    token = tokens[index]
    if token.kind == EOF:
        if index == 0:
            return 'Syntax error; token: "<EOF>", near: ""'
        previous = tokens[index - 1]
        return f'Syntax error; token: "<EOF>", near: "{text[previous.start : previous.end]}"'
    first = tokens[index - 1] if index > 0 else token
    last = tokens[index + 1] if tokens[index + 1].kind != EOF else token
    return f'Syntax error; token: "{token.text}", near: "{text[first.start : last.end]}"'
