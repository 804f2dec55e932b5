"""Condition operators: a registry of every IAM operator and the compiled form of one condition clause.

Semantics, from the IAM User Guide (reference_policies_elements_condition_operators,
reference_policies_condition-logic-multiple-context-keys-or-values,
reference_policies_condition-single-vs-multi-valued-context-keys), current text:

- several operators in a block: AND; several keys under one operator: AND (done by the caller);
- several policy values for one key: OR; for a *negated* operator (StringNotEquals, StringNotEqualsIgnoreCase,
  StringNotLike, NumericNotEquals, DateNotEquals, NotIpAddress, ArnNotEquals, ArnNotLike): NOR, "returns
  true only if all values evaluate to false";
- key absent from the request context: positive operators are false, negated operators are true
  ("This logic applies to all condition operators except ...IfExists and Null check");
- ``...IfExists``: key absent -> true; present -> the operator as written;
- ``Null``: ``"true"`` -> the key is absent; ``"false"`` -> present and not null (an empty set counts as
  null, like "a null data set, such as an empty string" in the set-operator text);
- ``ForAllValues:`` -> true if every request value satisfies the operator, and true when the key is absent
  or its set empty; ``ForAnyValue:`` -> true if at least one request value does, false when absent/empty.
  With a negated operator the per-value test is the NOR above: ``ForAnyValue:StringNotEquals`` holds if
  some request value equals none of the policy values; ``ForAllValues:StringNotEquals`` if no request
  value equals any policy value (section 8 #7: the current page describes only the single-valued NOR; we
  apply it per request value, which is what "NOR" inside a set qualifier reduces to).
- IfExists with a set qualifier: the set-operator page (reference_policies_condition-single-vs-multi-
  valued-context-keys, current text) says of ForAnyValue "for no matching context key or a null dataset,
  the condition returns false", and AWS answers false in practice (re:Post "ForAnyValue:StringEqualsIfExists
  behaving unexpectedly"): ``ForAnyValue:...IfExists`` on an absent key is **false**; ``ForAllValues:...
  IfExists`` on an absent key is true (as without IfExists).
- A multivalued request value under an operator without a set qualifier: positive operators hold if any
  request value matches; negated operators hold if no request value matches the positive form
  (documented by AWS only as "multivalued context keys require a condition set operator").
- Errors (an unparsable number, date or address on either side) raise ``ConditionError``; the evaluator
  fails closed on them (a Deny counts as matching, an Allow does not).
- Policy variables are honoured for String, Bool and ARN operators only.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import operator as _op
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from perimeterdb.policy.ast import ConditionClause, SetQualifier
from perimeterdb.policy.match import arn_regex, compiled, glob_regex
from perimeterdb.policy.variables import Part, parse_template, render

__all__ = ["OPERATORS", "CompiledCondition", "ConditionError", "OperatorSpec", "canonical_operator"]

ContextValue = str | tuple[str, ...]
Getter = Callable[[str], "ContextValue | None"]
Parts = list[tuple[str, bool]]


class ConditionError(Exception):
    """A condition could not be evaluated (a value of the wrong type on either side)."""


# --- value preparation -----------------------------------------------------------------------------


def _text(parts: Parts) -> str:
    return "".join(t for t, _ in parts)


def _lower(parts: Parts) -> str:
    return _text(parts).lower()


def _like(parts: Parts) -> Any:
    return compiled(glob_regex(parts))


def _arn(parts: Parts) -> Any:
    return compiled(arn_regex(parts))


@lru_cache(maxsize=4096)
def to_number(text: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise ValueError(f"not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"not a finite number: {text!r}")
    return value


_YEAR_MONTH_RE = re.compile(r"^(\d{4})(?:-(\d{2}))?$")


@lru_cache(maxsize=4096)
def to_epoch(text: str) -> float:
    """W3C/ISO 8601 dates and times, or epoch seconds, as UTC epoch seconds.

    The W3C profile of ISO 8601 (which the Date operators accept) includes year alone (``YYYY``) and
    year-month (``YYYY-MM``): they stand for the first instant of that year or month, UTC. Exactly four
    digits are therefore a year, not epoch seconds (epoch values of real requests have ten digits).
    """
    s = text.strip()
    if not s:
        raise ValueError("empty date")
    if (m := _YEAR_MONTH_RE.match(s)) is not None:
        month = int(m.group(2) or 1)
        if not 1 <= month <= 12:
            raise ValueError(f"not a date: {text!r}")
        return datetime(int(m.group(1)), month, 1, tzinfo=UTC).timestamp()
    if s.lstrip("+-").replace(".", "", 1).isdigit():
        return float(s)
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"not a date: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


@lru_cache(maxsize=1024)
def to_binary(text: str) -> bytes:
    try:
        return base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not base-64: {text!r}") from None


def to_network(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR block: {text!r}") from None


@lru_cache(maxsize=4096)
def to_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def _in_network(addr: Any, net: Any) -> bool:
    return bool(addr.version == net.version and addr in net)


def _regex_match(ctx: str, pattern: Any) -> bool:
    return pattern.fullmatch(ctx) is not None


def _identity(text: str) -> str:
    return text


def _lower_ctx(text: str) -> str:
    return text.lower()


# --- the registry ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OperatorSpec:
    """A positive base test, and whether this operator negates it (NOR over the policy values)."""

    name: str
    family: str
    negated: bool
    variables: bool
    prepare: Callable[[Parts], Any]  # policy value parts -> comparable; ValueError if malformed
    convert: Callable[[str], Any]  # request value -> comparable; ValueError if malformed
    test: Callable[[Any, Any], bool]  # (request comparable, policy comparable) -> positive match


def _spec(
    name: str, family: str, negated: bool, variables: bool, prepare: Any, convert: Any, test: Any
) -> OperatorSpec:
    return OperatorSpec(name, family, negated, variables, prepare, convert, test)


def _num(f: Callable[[str], Any]) -> Callable[[Parts], Any]:
    return lambda parts: f(_text(parts))


_prep_num = _num(to_number)
_prep_date = _num(to_epoch)
_prep_bin = _num(to_binary)
_prep_net = _num(to_network)

_SPECS: list[OperatorSpec] = []
for _neg in (False, True):
    _n = "Not" if _neg else ""
    _SPECS += [
        _spec(f"String{_n}Equals", "string", _neg, True, _text, _identity, _op.eq),
        _spec(f"String{_n}EqualsIgnoreCase", "string", _neg, True, _lower, _lower_ctx, _op.eq),
        _spec(f"String{_n}Like", "string", _neg, True, _like, _identity, _regex_match),
        _spec(f"Numeric{_n}Equals", "numeric", _neg, False, _prep_num, to_number, _op.eq),
        _spec(f"Date{_n}Equals", "date", _neg, False, _prep_date, to_epoch, _op.eq),
        _spec(f"{_n}IpAddress", "ip", _neg, False, _prep_net, to_address, _in_network),
        _spec(f"Arn{_n}Equals", "arn", _neg, True, _arn, _identity, _regex_match),
        _spec(f"Arn{_n}Like", "arn", _neg, True, _arn, _identity, _regex_match),
    ]
_SPECS += [
    _spec("NumericLessThan", "numeric", False, False, _prep_num, to_number, _op.lt),
    _spec("NumericLessThanEquals", "numeric", False, False, _prep_num, to_number, _op.le),
    _spec("NumericGreaterThan", "numeric", False, False, _prep_num, to_number, _op.gt),
    _spec("NumericGreaterThanEquals", "numeric", False, False, _prep_num, to_number, _op.ge),
    _spec("DateLessThan", "date", False, False, _prep_date, to_epoch, _op.lt),
    _spec("DateLessThanEquals", "date", False, False, _prep_date, to_epoch, _op.le),
    _spec("DateGreaterThan", "date", False, False, _prep_date, to_epoch, _op.gt),
    _spec("DateGreaterThanEquals", "date", False, False, _prep_date, to_epoch, _op.ge),
    _spec("Bool", "bool", False, True, _lower, _lower_ctx, _op.eq),
    _spec("BinaryEquals", "binary", False, False, _prep_bin, to_binary, _op.eq),
    _spec("Null", "null", False, False, _lower, _lower_ctx, _op.eq),
]

OPERATORS: dict[str, OperatorSpec] = {s.name: s for s in _SPECS}
_BY_LOWER: dict[str, str] = {name.lower(): name for name in OPERATORS}


def canonical_operator(name: str) -> tuple[str, SetQualifier, bool] | None:
    """``"forAnyValue:stringlikeifexists"`` -> ``("StringLike", FOR_ANY_VALUE, True)``; None if unknown."""
    qualifier = SetQualifier.NONE
    rest = name
    if ":" in name:
        prefix, rest = name.split(":", 1)
        lowered = prefix.lower()
        if lowered == "forallvalues":
            qualifier = SetQualifier.FOR_ALL_VALUES
        elif lowered == "foranyvalue":
            qualifier = SetQualifier.FOR_ANY_VALUE
        else:
            return None
    lowered = rest.lower()
    if_exists = False
    if lowered.endswith("ifexists"):
        if_exists = True
        lowered = lowered[: -len("ifexists")]
    base = _BY_LOWER.get(lowered)
    if base is None or (base == "Null" and if_exists):
        return None
    return base, qualifier, if_exists


# --- one compiled clause ---------------------------------------------------------------------------

_MALFORMED = object()


@lru_cache(maxsize=16384)
def _prepare_rendered(op_name: str, rendered: tuple[tuple[str, bool], ...]) -> Any:
    try:
        return OPERATORS[op_name].prepare(list(rendered))
    except ValueError:
        return _MALFORMED


class CompiledCondition:
    """One (operator, key) clause, ready to evaluate against a context lookup."""

    __slots__ = (
        "all_static",
        "clause",
        "convert",
        "if_exists",
        "is_null",
        "key",
        "malformed",
        "negated",
        "null_absent",
        "qualifier",
        "spec",
        "test",
        "values",
    )

    def __init__(self, clause: ConditionClause, *, variables: bool) -> None:
        self.clause = clause
        self.spec = OPERATORS[clause.base]
        self.key = clause.key.lower()
        self.qualifier = clause.qualifier
        self.if_exists = clause.if_exists
        self.null_absent: frozenset[bool] = frozenset(v.lower() == "true" for v in clause.values)
        values: list[Any] = []
        for raw in clause.values:
            if variables and self.spec.variables and "${" in raw:
                parts: tuple[Part, ...] = parse_template(raw)
                if any(not isinstance(p, str) for p in parts):
                    values.append(parts)  # a template, rendered per request
                    continue
            try:
                values.append(self.spec.prepare([(raw, False)]))
            except ValueError:
                values.append(_MALFORMED)
        self.values = tuple(values)
        self.all_static = not any(isinstance(v, tuple) for v in self.values)
        self.malformed = any(v is _MALFORMED for v in self.values)
        self.is_null = self.spec.family == "null"
        self.negated = self.spec.negated
        self.convert = self.spec.convert
        self.test = self.spec.test

    def _policy_values(self, get: Getter) -> tuple[Any, ...] | list[Any]:
        if self.all_static:
            if self.malformed:
                raise ConditionError(f"{self.clause.operator}: malformed policy value for {self.clause.key}")
            return self.values
        out: list[Any] = []
        for v in self.values:
            if isinstance(v, tuple):
                rendered = render(v, get)
                if rendered is None:
                    continue  # a variable without value matches nothing
                v = _prepare_rendered(self.spec.name, tuple(rendered))
            if v is _MALFORMED:
                raise ConditionError(f"{self.clause.operator}: malformed policy value for {self.clause.key}")
            out.append(v)
        return out

    def _positive(self, value: str, policy_values: tuple[Any, ...] | list[Any]) -> bool:
        try:
            c = self.convert(value)
        except ValueError:
            raise ConditionError(
                f"{self.clause.operator}: {self.clause.key}={value!r} has the wrong type"
            ) from None
        test = self.test
        for p in policy_values:
            if test(c, p):
                return True
        return False

    def evaluate(self, get: Getter) -> bool:
        """True/False, or ``ConditionError`` when a value cannot be compared."""
        raw = get(self.key)
        if self.is_null:
            return (raw is None or raw == ()) in self.null_absent
        if raw is None or raw == ():
            if self.qualifier is SetQualifier.FOR_ANY_VALUE:
                return False
            if self.if_exists or self.qualifier is SetQualifier.FOR_ALL_VALUES:
                return True
            return self.negated
        policy_values = self._policy_values(get)
        negated = self.negated
        if type(raw) is str:
            return self._positive(raw, policy_values) != negated
        if self.qualifier is SetQualifier.FOR_ANY_VALUE:
            return any(self._positive(v, policy_values) != negated for v in raw)
        if self.qualifier is SetQualifier.FOR_ALL_VALUES:
            return all(self._positive(v, policy_values) != negated for v in raw)
        return any(self._positive(v, policy_values) for v in raw) != negated
