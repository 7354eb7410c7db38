"""A `choice` step's conditions as ASL Choice rules."""

from __future__ import annotations

from collections.abc import Callable

from aws_cdk import aws_stepfunctions as sfn

from sutram.definition import Condition

_COMPARISONS = {
    # comparison: (for strings, for numbers)
    "greater_than": (sfn.Condition.string_greater_than, sfn.Condition.number_greater_than),
    "greater_than_or_equal": (sfn.Condition.string_greater_than_equals, sfn.Condition.number_greater_than_equals),
    "less_than": (sfn.Condition.string_less_than, sfn.Condition.number_less_than),
    "less_than_or_equal": (sfn.Condition.string_less_than_equals, sfn.Condition.number_less_than_equals),
}


def choice_rule(condition: Condition, path: Callable[[str], str] = str) -> sfn.Condition:
    """A definition's condition as an ASL Choice rule; the value's type picks the comparison.
    `path` turns a `var` expression into a path into the state (infra.workflow.frames.Frame.path)."""
    if condition.all is not None:
        return sfn.Condition.and_(*(choice_rule(child, path) for child in condition.all))
    if condition.any is not None:
        return sfn.Condition.or_(*(choice_rule(child, path) for child in condition.any))
    if condition.not_ is not None:
        return sfn.Condition.not_(choice_rule(condition.not_, path))
    comparison = condition.comparison
    assert condition.var is not None and comparison is not None  # the definition's validator guarantees both
    var = path(condition.var)
    if comparison == "is_present":
        return sfn.Condition.is_present(var) if condition.is_present else sfn.Condition.is_not_present(var)
    if comparison == "matches":
        return sfn.Condition.string_matches(var, str(condition.matches))
    if comparison in ("equals", "not_equals"):
        value = getattr(condition, comparison)
        if value is None:
            rule = sfn.Condition.is_null(var)
        elif isinstance(value, bool):
            rule = sfn.Condition.boolean_equals(var, value)
        elif isinstance(value, int | float):
            rule = sfn.Condition.number_equals(var, value)
        else:
            rule = sfn.Condition.string_equals(var, value)
        return rule if comparison == "equals" else sfn.Condition.not_(rule)
    value = getattr(condition, comparison)
    for_string, for_number = _COMPARISONS[comparison]
    return for_string(var, value) if isinstance(value, str) else for_number(var, value)
