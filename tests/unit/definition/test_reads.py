"""sutram.definition.reads: which parts of each producer's value Step Functions reads itself."""

from __future__ import annotations

from typing import Any

from sutram.definition import WorkflowDefinition
from sutram.definition.reads import kept_paths


def kept(steps: list[dict[str, Any]]) -> dict[str, list[tuple[str, ...]]]:
    return kept_paths(WorkflowDefinition.model_validate({"name": "w", "steps": steps}))


def tool(step_id: str, **fields: Any) -> dict[str, Any]:
    return {"id": step_id, "type": "tool", "tool": "word_frequencies", "input": {"text": "x"}} | fields


def test_a_lambda_step_keeps_nothing_and_each_native_state_keeps_what_it_reads() -> None:
    paths = kept(
        [
            tool("first", input={"text": "$.input.doc.text"}),  # a Lambda loads whatever it reads
            {"id": "later", "type": "wait", "until": "$.input.schedule.at"},
            {
                "id": "route",
                "type": "choice",
                "choices": [{"when": {"var": "$.steps.first.total_words", "greater_than": 3}, "then": [tool("a")]}],
                "otherwise": [tool("b")],
            },
            {"id": "pick", "type": "transform", "output": {"name": "$.input.customer.name", "all": "$.input"}},
        ]
    )
    # The whole input copied (`all`) needs no part: a reference copies as it is.
    assert paths == {"input": [("customer", "name"), ("schedule", "at")], "first": [("total_words",)]}


def test_reads_through_containers_reach_the_steps_that_produce_the_value() -> None:
    paths = kept(
        [
            {
                "id": "route",
                "type": "choice",
                "choices": [{"when": {"var": "$.input.x", "equals": 1}, "then": [tool("yes")]}],
                "otherwise": [tool("no_")],
            },
            {"id": "both", "type": "parallel", "branches": {"left": [tool("l1"), tool("l2")], "right": [tool("r")]}},
            {"id": "each", "type": "map", "items": "$.input.list", "steps": [tool("inner")]},
            {"id": "alias", "type": "transform", "output": {"doc": {"label": "$.steps.route.label"}}},
            {
                "id": "check",
                "type": "choice",
                "choices": [
                    {"when": {"var": "$.steps.both.left.score", "greater_than": 1}, "then": [tool("c1")]},
                    {"when": {"var": "$.steps.each[0].total", "greater_than": 1}, "then": [tool("c2")]},
                    {"when": {"var": "$.steps.alias.doc.label", "equals": "a"}, "then": [tool("c3")]},
                ],
                "otherwise": [tool("c4")],
            },
        ]
    )
    assert paths["yes"] == paths["no_"] == [("label",)]  # each branch's last step, via the transform
    assert paths["l2"] == [("score",)] and "l1" not in paths and "r" not in paths
    assert paths["inner"] == [("total",)]  # every iteration's output
    assert paths["input"] == [("list", "*"), ("x",)]  # the inline map's list stays a list


def test_a_map_items_reads_keep_the_list_item_by_item_and_a_distributed_map_keeps_per_staged_item() -> None:
    paths = kept(
        [
            {
                "id": "each",
                "type": "map",
                "items": "$.input.docs",
                "steps": [
                    {
                        "id": "kind",
                        "type": "choice",
                        "choices": [{"when": {"var": "$.item.meta.kind", "equals": "pdf"}, "then": [tool("pdf")]}],
                        "otherwise": [tool("other")],
                    }
                ],
            },
            {
                "id": "many",
                "type": "map",
                "items": "$.input.rows",
                "distributed": True,
                "steps": [{"id": "shape", "type": "transform", "output": {"id": "$.item.id"}}],
            },
        ]
    )
    assert paths["input"] == [("docs", "*"), ("docs", "*", "meta", "kind")]  # the distributed list is not kept
    assert paths["items:many"] == [("id",)]
