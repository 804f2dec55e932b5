"""Pure parsers for the four expression grammars, cached by text.

Each parser reads the whole text first (a syntax error wins over everything), then reports the checks that
need nothing but the text, in DynamoDB's order: for conditions redundant parentheses, unknown functions,
misused functions, reserved words; for updates reserved words, unknown functions, misused functions,
repeated clauses. Checks that need ``ExpressionAttributeNames``/``Values`` happen in ``resolve``.

Errors are raised as ``ValidationException("Invalid <parameter>: <message>")``.
"""

from __future__ import annotations

import sys
from functools import lru_cache

from perimeterdb.dynamodb.expressions.ast import (
    And,
    Arith,
    Between,
    Call,
    Comparison,
    Condition,
    In,
    Not,
    Operand,
    Or,
    Path,
    PathElement,
    Placeholder,
    SetAction,
    UpdateAction,
    UpdateExpression,
    ValueRef,
)
from perimeterdb.dynamodb.expressions.lexer import EOF, Token, syntax_error_message, tokenize
from perimeterdb.dynamodb.expressions.reserved_words import is_reserved
from perimeterdb.errors import ApiError, validation

__all__ = [
    "CONDITION_FUNCTIONS",
    "MAX_EXPRESSION_BYTES",
    "UPDATE_FUNCTIONS",
    "check_expression_text",
    "parse_condition",
    "parse_key_condition",
    "parse_projection",
    "parse_update",
]

MAX_EXPRESSION_BYTES = 4096
# "The maximum number of operators or functions allowed in any expression is 300" (DynamoDB's constraints
# page, "Expression parameters"); past it: "The expression contains too many operators; operator count: N".
MAX_OPERATORS = 300
# Levels of parentheses, NOTs and function calls the parser follows. DynamoDB accepts anything within its
# 300 operators, which allows about 300 levels (``a = :v AND (a = :v AND (...))`` 149 deep is 299
# operators): the bound is above that, so that no expression DynamoDB accepts is refused for its depth.
MAX_NESTING = 400
MAX_PATH_LEVELS = 32  # a document path's levels (its top-level attribute included), as for items
# Each level costs the recursive-descent parser four Python frames, and binding and evaluation one or two
# more. Python 3.11 runs Python-to-Python calls without using the C stack, so a higher frame limit costs
# nothing but the frames; it is raised (never lowered) once, here, to what MAX_NESTING needs.
_FRAMES_NEEDED = 5 * MAX_NESTING + 1000
if sys.getrecursionlimit() < _FRAMES_NEEDED:
    sys.setrecursionlimit(_FRAMES_NEEDED)

# Function name -> number of operands.
CONDITION_FUNCTIONS = {
    "attribute_exists": 1,
    "attribute_not_exists": 1,
    "attribute_type": 2,
    "begins_with": 2,
    "contains": 2,
    "size": 1,
}
UPDATE_FUNCTIONS = {"if_not_exists": 2, "list_append": 2}

_COMPARATORS = frozenset({"=", "<>", "<", "<=", ">", ">="})
_CONDITION_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
_UPDATE_KEYWORDS = frozenset({"SET", "REMOVE", "ADD", "DELETE"})


class _Backtrack(Exception):
    pass


def check_expression_text(text: str, parameter: str) -> None:
    """The checks DynamoDB makes before parsing: not empty, at most 4 KB."""
    if not text.strip(" \t\r\n"):
        raise validation(f"Invalid {parameter}: The expression can not be empty;")
    size = len(text.encode("utf-8"))
    if size > MAX_EXPRESSION_BYTES:
        suffix = (
            f" expression size: {size}" if parameter in ("ConditionExpression", "FilterExpression") else ""
        )
        raise validation(
            f"Invalid {parameter}: Expression size has exceeded the maximum allowed size;{suffix}"
        )


class _Parser:
    """Recursive descent with backtracking; a failure is reported at the furthest token reached."""

    def __init__(self, text: str, parameter: str, keywords: frozenset[str]) -> None:
        self.text = text
        self.parameter = parameter
        self.keywords = keywords
        self.tokens: list[Token] = tokenize(text)
        self.pos = 0
        self.furthest = 0
        self.depth = 0
        self.too_deep = False
        # Text-only problems, first occurrence of each kind.
        self.redundant_parens = False
        self.unknown_function: str | None = None
        self.misused_function: str | None = None
        self.reserved: str | None = None
        self.deep_path: int | None = None  # the levels of the first document path past MAX_PATH_LEVELS

    # --- token helpers ---------------------------------------------------------------------------------

    def fail(self) -> _Backtrack:
        if self.pos > self.furthest:
            self.furthest = self.pos
        return _Backtrack()

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def at_op(self, text: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "OP" and token.text == text

    def at_keyword(self, word: str) -> bool:
        token = self.tokens[self.pos]
        return token.kind == "NAME" and token.text.upper() == word

    def expect_op(self, text: str) -> None:
        if not self.at_op(text):
            raise self.fail()
        self.pos += 1

    def expect_keyword(self, word: str) -> None:
        if not self.at_keyword(word):
            raise self.fail()
        self.pos += 1

    def expect_end(self) -> None:
        if self.tokens[self.pos].kind != EOF:
            raise self.fail()

    def error(self, message: str) -> ApiError:
        return validation(f"Invalid {self.parameter}: {message}")

    def syntax_error(self) -> ApiError:
        return self.error(syntax_error_message(self.text, self.tokens, self.furthest))

    def snapshot(self) -> tuple[int, bool, str | None, str | None, str | None, int]:
        return (
            self.pos,
            self.redundant_parens,
            self.unknown_function,
            self.misused_function,
            self.reserved,
            self.depth,
        )

    def restore(self, saved: tuple[int, bool, str | None, str | None, str | None, int]) -> None:
        (
            self.pos,
            self.redundant_parens,
            self.unknown_function,
            self.misused_function,
            self.reserved,
            self.depth,
        ) = saved

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            self.too_deep = True
            self.pos = len(self.tokens) - 1
            raise self.fail()

    # --- shared pieces ---------------------------------------------------------------------------------

    def path(self) -> Path:
        elements: list[PathElement] = [self.path_element()]
        while True:
            if self.at_op("."):
                self.pos += 1
                elements.append(self.path_element())
            elif self.at_op("["):
                self.pos += 1
                token = self.peek()
                if token.kind != "NUMBER":
                    raise self.fail()
                self.pos += 1
                self.expect_op("]")
                elements.append(int(token.text))
            else:
                if len(elements) > MAX_PATH_LEVELS and self.deep_path is None:
                    self.deep_path = len(elements)
                return Path(tuple(elements))

    def path_element(self) -> PathElement:
        token = self.peek()
        if token.kind == "NAME" and token.text.upper() not in self.keywords:
            self.pos += 1
            if self.reserved is None and is_reserved(token.text):
                self.reserved = token.text
            return token.text
        if token.kind == "HASH":
            self.pos += 1
            return Placeholder(token.text)
        raise self.fail()

    def value_ref(self) -> ValueRef:
        token = self.peek()
        if token.kind != "VALUE":
            raise self.fail()
        self.pos += 1
        return ValueRef(token.text)

    def is_call_start(self) -> bool:
        token = self.peek()
        nxt = self.tokens[self.pos + 1] if token.kind != EOF else token
        return token.kind == "NAME" and nxt.kind == "OP" and nxt.text == "("

    def note_function(self, name: str, known: dict[str, int]) -> None:
        if name in known:
            return
        if name in CONDITION_FUNCTIONS or name in UPDATE_FUNCTIONS:
            # A real function in the wrong kind of expression (if_not_exists in a condition, size in SET).
            self.note_misused(name)
        elif self.unknown_function is None:
            self.unknown_function = name

    def note_misused(self, name: str) -> None:
        if self.misused_function is None:
            self.misused_function = name

    # --- conditions ------------------------------------------------------------------------------------

    def condition(self) -> tuple[Condition, bool]:
        """Returns the node and whether it is exactly one parenthesized group."""
        left, wrapped = self.and_condition()
        while self.at_keyword("OR"):
            self.pos += 1
            right, _ = self.and_condition()
            left, wrapped = Or(left, right), False
        return left, wrapped

    def and_condition(self) -> tuple[Condition, bool]:
        left, wrapped = self.not_condition()
        while self.at_keyword("AND"):
            self.pos += 1
            right, _ = self.not_condition()
            left, wrapped = And(left, right), False
        return left, wrapped

    def not_condition(self) -> tuple[Condition, bool]:
        if self.at_keyword("NOT"):
            self.pos += 1
            self.enter()  # NOT NOT NOT ... nests as deep as parentheses do
            try:
                operand, _ = self.not_condition()
            finally:
                self.depth -= 1
            return Not(operand), False
        return self.primary_condition()

    def primary_condition(self) -> tuple[Condition, bool]:
        self.enter()
        try:
            if self.at_op("("):
                saved = self.snapshot()
                try:
                    self.pos += 1
                    inner, inner_wrapped = self.condition()
                    self.expect_op(")")
                    if inner_wrapped:
                        self.redundant_parens = True
                    return inner, True
                except _Backtrack:
                    self.restore(saved)
            return self.simple_condition(), False
        finally:
            self.depth -= 1

    def simple_condition(self) -> Condition:
        left = self.operand()
        token = self.peek()
        if token.kind == "OP" and token.text in _COMPARATORS:
            self.pos += 1
            right = self.operand()
            self.check_operands((left, right))
            return Comparison(token.text, left, right)
        if self.at_keyword("BETWEEN"):
            self.pos += 1
            low = self.operand()
            self.expect_keyword("AND")
            high = self.operand()
            self.check_operands((left, low, high))
            return Between(left, low, high)
        if self.at_keyword("IN"):
            self.pos += 1
            self.expect_op("(")
            options = [self.operand()]
            while self.at_op(","):
                self.pos += 1
                options.append(self.operand())
            self.expect_op(")")
            self.check_operands((left, *options))
            return In(left, tuple(options))
        if isinstance(left, Call):
            if left.name == "size":
                self.note_misused("size")
            return left
        raise self.fail()

    def check_operands(self, operands: tuple[Operand, ...]) -> None:
        for operand in operands:
            if isinstance(operand, Call) and operand.name != "size":
                self.note_misused(operand.name)

    def operand(self) -> Operand:
        return self.wrapped_operand()[0]

    def wrapped_operand(self) -> tuple[Operand, bool]:
        if self.at_op("("):
            self.enter()
            try:
                self.pos += 1
                inner, inner_wrapped = self.wrapped_operand()
                self.expect_op(")")
                if inner_wrapped:
                    self.redundant_parens = True
                return inner, True
            finally:
                self.depth -= 1
        return self.bare_operand(), False

    def bare_operand(self) -> Operand:
        token = self.peek()
        if token.kind == "VALUE":
            return self.value_ref()
        if self.is_call_start():
            return self.condition_call()
        return self.path()

    def condition_call(self) -> Call:
        name = self.peek().text
        self.pos += 2  # name and "("
        self.enter()
        try:
            args = [self.operand()]
            while self.at_op(","):
                self.pos += 1
                args.append(self.operand())
            self.expect_op(")")
        finally:
            self.depth -= 1
        self.note_function(name, CONDITION_FUNCTIONS)
        self.check_operands(tuple(args))
        return Call(name, tuple(args))

    def path_too_deep_error(self) -> ApiError | None:
        if self.deep_path is None:
            return None
        return self.error(f"The document path has too many nesting levels; nesting levels: {self.deep_path}")

    def condition_static_error(self) -> ApiError | None:
        if self.redundant_parens:
            return self.error("The expression has redundant parentheses;")
        if self.unknown_function is not None:
            return self.error(f"Invalid function name; function: {self.unknown_function}")
        if self.misused_function is not None:
            return self.error(
                "The function is not allowed to be used this way in an expression; function: "
                + self.misused_function
            )
        if self.reserved is not None:
            return self.error(f"Attribute name is a reserved keyword; reserved keyword: {self.reserved}")
        return None

    # --- updates ---------------------------------------------------------------------------------------

    def update(self) -> tuple[UpdateExpression, str | None]:
        sets: list[SetAction] = []
        removes: list[UpdateAction] = []
        adds: list[UpdateAction] = []
        deletes: list[UpdateAction] = []
        order: list[Path] = []
        seen: set[str] = set()
        repeated: str | None = None
        while True:
            token = self.peek()
            word = token.text.upper() if token.kind == "NAME" else ""
            if word not in _UPDATE_KEYWORDS:
                raise self.fail()
            self.pos += 1
            if word in seen and repeated is None:
                repeated = word
            seen.add(word)
            while True:
                path = self.path()
                order.append(path)
                if word == "SET":
                    self.expect_op("=")
                    sets.append(SetAction(path, self.set_value()))
                elif word == "REMOVE":
                    removes.append(UpdateAction("REMOVE", path))
                else:
                    value = self.value_ref()
                    (adds if word == "ADD" else deletes).append(UpdateAction(word, path, value))
                if not self.at_op(","):
                    break
                self.pos += 1
            if self.peek().kind == EOF:
                break
        expression = UpdateExpression(tuple(sets), tuple(removes), tuple(adds), tuple(deletes), tuple(order))
        return expression, repeated

    def set_value(self) -> Operand | Arith:
        if self.at_op("("):
            saved = self.snapshot()
            try:
                self.pos += 1
                value = self.set_value_inner()
                self.expect_op(")")
                if not (self.at_op("+") or self.at_op("-")):
                    return value
            except _Backtrack:
                pass
            self.restore(saved)
        return self.set_value_inner()

    def set_value_inner(self) -> Operand | Arith:
        left = self.update_operand()
        if self.at_op("+") or self.at_op("-"):
            op = self.peek().text
            self.pos += 1
            right = self.update_operand()
            return Arith(op, left, right)
        return left

    def update_operand(self, inside: str | None = None) -> Operand:
        if self.at_op("("):
            self.enter()
            try:
                self.pos += 1
                inner = self.update_operand(inside)
                self.expect_op(")")
                return inner
            finally:
                self.depth -= 1
        token = self.peek()
        if token.kind == "VALUE":
            return self.value_ref()
        if self.is_call_start():
            name = token.text
            self.pos += 2
            self.enter()
            try:
                args = [self.update_operand(name)]
                while self.at_op(","):
                    self.pos += 1
                    args.append(self.update_operand(name))
                self.expect_op(")")
            finally:
                self.depth -= 1
            self.note_function(name, UPDATE_FUNCTIONS)
            # Only if_not_exists may be nested: inside list_append or another if_not_exists.
            if inside is not None and not (
                inside in ("list_append", "if_not_exists") and name == "if_not_exists"
            ):
                self.note_misused(name)
            return Call(name, tuple(args))
        return self.path()

    def update_static_error(self, repeated: str | None) -> ApiError | None:
        if self.reserved is not None:
            return self.error(f"Attribute name is a reserved keyword; reserved keyword: {self.reserved}")
        if self.unknown_function is not None:
            return self.error(f"Invalid function name; function: {self.unknown_function}")
        if self.misused_function is not None:
            return self.error(
                "The function is not allowed to be used this way in an expression; function: "
                + self.misused_function
            )
        if repeated is not None:
            return self.error(f'The "{repeated}" section can only be used once in an update expression;')
        return None

    # --- projections -----------------------------------------------------------------------------------

    def projection(self) -> tuple[Path, ...]:
        paths = [self.path()]
        while self.at_op(","):
            self.pos += 1
            paths.append(self.path())
        return tuple(paths)


def _run_condition(text: str, parameter: str, check_parens: bool) -> Condition:
    check_expression_text(text, parameter)
    parser = _Parser(text, parameter, _CONDITION_KEYWORDS)
    try:
        node, _ = parser.condition()
        parser.expect_end()
    except _Backtrack:
        if parser.too_deep:  # nested past MAX_NESTING: what DynamoDB would say is most likely the count
            count = _token_operator_count(parser.tokens)
            if count > MAX_OPERATORS:
                raise parser.error(
                    f"The expression contains too many operators; operator count: {count}"
                ) from None
        raise parser.syntax_error() from None
    if not check_parens:
        parser.redundant_parens = False
    error = parser.condition_static_error() or parser.path_too_deep_error()
    if error is not None:
        raise error
    count = _operator_count(node)
    if count > MAX_OPERATORS:
        raise parser.error(f"The expression contains too many operators; operator count: {count}")
    return node


_OPERATORS = (And, Or, Not, Comparison, Between, In, Call)
_OPERATOR_WORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})


def _token_operator_count(tokens: list[Token]) -> int:
    """The operators of an expression too deep to parse, from its tokens alone (a BETWEEN's AND counts)."""
    count = 0
    for i, token in enumerate(tokens):
        if token.kind == "OP" and token.text in _COMPARATORS:
            count += 1
        elif token.kind == "NAME":
            following = tokens[i + 1] if i + 1 < len(tokens) else token
            if token.text.upper() in _OPERATOR_WORDS or (following.kind == "OP" and following.text == "("):
                count += 1
    return count


def _operator_count(node: Condition) -> int:
    """The operators and functions of a condition (AND, OR, NOT, comparisons, BETWEEN, IN, functions),
    counted without recursion, whatever the depth."""
    count = 0
    stack: list[object] = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, _OPERATORS):
            count += 1
        if isinstance(item, And | Or):
            stack.append(item.left)
            stack.append(item.right)
        elif isinstance(item, Not):
            stack.append(item.operand)
        elif isinstance(item, Comparison):
            stack.append(item.left)
            stack.append(item.right)
        elif isinstance(item, Between):
            stack.extend((item.operand, item.low, item.high))
        elif isinstance(item, In):
            stack.append(item.operand)
            stack.extend(item.options)
        elif isinstance(item, Call):
            stack.extend(item.args)
    return count


@lru_cache(maxsize=4096)
def parse_condition(text: str, parameter: str = "ConditionExpression") -> Condition:
    """Parse a ConditionExpression or FilterExpression (pass ``parameter="FilterExpression"``)."""
    return _run_condition(text, parameter, check_parens=True)


@lru_cache(maxsize=4096)
def parse_key_condition(text: str) -> Condition:
    """Parse a KeyConditionExpression with the condition grammar; its own rules apply at resolve time."""
    return _run_condition(text, "KeyConditionExpression", check_parens=False)


@lru_cache(maxsize=4096)
def parse_update(text: str) -> UpdateExpression:
    """Parse an UpdateExpression (SET, REMOVE, ADD, DELETE clauses, each at most once)."""
    parameter = "UpdateExpression"
    check_expression_text(text, parameter)
    parser = _Parser(text, parameter, _UPDATE_KEYWORDS)
    try:
        expression, repeated = parser.update()
        parser.expect_end()
    except _Backtrack:
        raise parser.syntax_error() from None
    error = parser.update_static_error(repeated) or parser.path_too_deep_error()
    if error is not None:
        raise error
    return expression


@lru_cache(maxsize=4096)
def parse_projection(text: str) -> tuple[Path, ...]:
    """Parse a ProjectionExpression: comma-separated document paths."""
    parameter = "ProjectionExpression"
    check_expression_text(text, parameter)
    parser = _Parser(text, parameter, frozenset())
    try:
        paths = parser.projection()
        parser.expect_end()
    except _Backtrack:
        raise parser.syntax_error() from None
    if parser.reserved is not None:
        raise parser.error(f"Attribute name is a reserved keyword; reserved keyword: {parser.reserved}")
    error = parser.path_too_deep_error()
    if error is not None:
        raise error
    return paths
