"""Indicator formulas of the department assessment (统一考核): a small safe expression language over named
counts, e.g. ``on_time / due`` or ``(satisfied + 0.8 * basic) / rated``.

Parsed with ``ast`` and checked against a whitelist (numbers, names, + - * /, unary minus, parentheses); no
call, attribute, subscript or other operator gets through. Pure: no database.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from typing import Mapping

MAX_LENGTH = 200
_OPERATORS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
              ast.Div: None}


class FormulaError(ValueError):
    """A formula that may not be used. ``message`` is an English message id with ``%(name)s`` values."""

    def __init__(self, message: str, **values):
        super().__init__(message % values if values else message)
        self.message = message
        self.values = values


class NoData(ArithmeticError):
    """The formula divides by zero for these counts: the indicator has no data (not a score of 0)."""


@dataclass(frozen=True)
class Formula:
    """A checked formula and the count names it reads."""

    text: str
    tree: ast.Expression
    names: frozenset[str]

    def evaluate(self, counts: Mapping[str, float]) -> float:
        """The value for ``counts``; NoData when a divisor is zero."""
        return _eval(self.tree.body, counts)


def parse_formula(text: str, known: frozenset[str] | set[str]) -> Formula:
    """Check ``text`` and return it parsed; FormulaError says what is wrong."""
    text = (text or "").strip()
    if not text:
        raise FormulaError("A formula is required.")
    if len(text) > MAX_LENGTH:
        raise FormulaError("A formula may have at most %(max)s characters.", max=MAX_LENGTH)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise FormulaError("The formula %(text)s is not a valid expression.", text=text[:60]) from None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id not in known:
                raise FormulaError("Unknown count %(name)s in the formula.", name=node.id[:40])
            names.add(node.id)
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
                raise FormulaError("Only numbers, count names, + - * / and parentheses are allowed.")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _OPERATORS:
                raise FormulaError("Only numbers, count names, + - * / and parentheses are allowed.")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, (ast.USub, ast.UAdd)):
                raise FormulaError("Only numbers, count names, + - * / and parentheses are allowed.")
        elif not isinstance(node, (ast.Expression, ast.Load, ast.operator, ast.unaryop)):
            raise FormulaError("Only numbers, count names, + - * / and parentheses are allowed.")
    for node in ast.walk(tree):  # a divisor of numbers only that is zero would leave every unit without data
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and not any(
                isinstance(inner, ast.Name) for inner in ast.walk(node.right)) and _is_zero(node.right):
            raise FormulaError("The formula %(text)s divides by zero.", text=text[:60])
    return Formula(text, tree, frozenset(names))


def _is_zero(node: ast.AST) -> bool:
    """Whether a checked expression of numbers only is zero (or divides by zero itself)."""
    try:
        return _eval(node, {}) == 0
    except NoData:
        return True


_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def rename(text: str, labels: Mapping[str, str]) -> str:
    """``text`` with each count name replaced by its label (``labels``: name -> label), to show a formula in a
    person's words; other names and numbers as they are."""
    return _NAME_RE.sub(lambda m: labels.get(m.group(0), m.group(0)), text or "")


def unlabel(text: str, labels: Mapping[str, str]) -> str:
    """A formula typed with labels (as ``rename`` shows it) back in count names, for ``parse_formula``; count
    names typed as such stay. The longest label wins where one contains another."""
    by_label = {label: name for name, label in labels.items() if label and label != name}
    if not by_label:
        return text or ""
    pattern = re.compile("|".join(re.escape(label) for label in sorted(by_label, key=len, reverse=True)))
    return pattern.sub(lambda m: by_label[m.group(0)], text or "")


def _eval(node: ast.AST, counts: Mapping[str, float]) -> float:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(counts.get(node.id, 0))
    if isinstance(node, ast.UnaryOp):
        value = _eval(node.operand, counts)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp):
        left, right = _eval(node.left, counts), _eval(node.right, counts)
        if isinstance(node.op, ast.Div):
            if right == 0:
                raise NoData()
            return left / right
        return _OPERATORS[type(node.op)](left, right)
    raise FormulaError("Only numbers, count names, + - * / and parentheses are allowed.")  # checked at parse
