"""Input mapping expressions: the `input`, `item` and `steps.<id>` roots, parsing and evaluation."""

from __future__ import annotations

import pytest

from sutram import expressions
from sutram.expressions import ExpressionError, Reference


def test_each_root_parses_to_its_reference():
    assert expressions.parse("$.input.docs[2].title") == Reference("input", ("docs", 2, "title"))
    assert expressions.parse("$.item") == Reference("item", ())
    assert expressions.parse("$.item.title") == Reference("item", ("title",))
    assert expressions.parse("$.steps.classify.category") == Reference("steps.classify", ("category",))
    assert expressions.parse("$.steps.classify").step_id == "classify"
    assert expressions.parse("$.item").step_id is None


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("$.output.x", "must start with \\$.input, \\$.item or \\$.steps"),
        ("$.steps", "must name a step"),
        ("$.input..x", "cannot parse"),
        ("input.x", "is not an expression"),
    ],
)
def test_a_malformed_expression_is_refused(expression, message):
    with pytest.raises(ExpressionError, match=message):
        expressions.parse(expression)


def test_references_are_found_in_nested_mappings_and_literals_are_left_alone():
    mapping = {"a": "$.item.x", "b": [{"c": "$.steps.s.y"}, "literal"], "d": 3}
    assert [ref.root for ref in expressions.references_in(mapping)] == ["item", "steps.s"]


def test_evaluate_reads_the_item_root_and_loads_what_it_walks_through():
    roots = {"item": {"doc": {"ref": "k"}}, "input": {"n": 1}}
    loaded = {"k": {"title": "Memo"}}

    def load(value):
        return loaded[value["ref"]] if isinstance(value, dict) and "ref" in value else value

    assert expressions.evaluate({"t": "$.item.doc.title", "n": "$.input.n", "x": 2}, roots, load) == {
        "t": "Memo",
        "n": 1,
        "x": 2,
    }
    with pytest.raises(ExpressionError, match=r"steps\.other is not available"):
        expressions.evaluate("$.steps.other", roots, load)
