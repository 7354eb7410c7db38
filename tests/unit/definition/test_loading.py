"""Loading workflow definitions (sutram.definition): every step type loads, and an invalid file fails
at load naming the file, the step and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sutram.definition import (
    DefinitionError,
    MapStep,
    WorkflowDefinition,
    load_all,
    load_definition,
    roots_from_outside,
)
from tests.support import REPO


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_workflow_loads():
    names = [definition.name for definition in load_all(REPO / "workflows")]
    assert {"document-analysis", "document-batch"} <= set(names)


def test_a_bad_field_names_file_step_and_field(tmp_path):
    path = write(
        tmp_path,
        """
name: flow
steps:
  - id: first
    type: llm
    prompt: hi
  - id: second
    type: llm
    prompt: hi
    retry: {max_attempts: 99}
""",
    )
    with pytest.raises(DefinitionError) as error:
        load_definition(path)
    assert str(error.value) == (
        f"{path}: step 'second' (steps[1]), field 'retry.max_attempts': Input should be less than or equal to 20"
    )


def test_an_unknown_step_type_is_named(tmp_path):
    path = write(tmp_path, "name: flow\nsteps:\n  - {id: first, type: teleport}\n")
    with pytest.raises(DefinitionError, match=r"step 'first' \(steps\[0\]\), field 'type'.*'llm', 'tool'"):
        load_definition(path)


def test_a_reference_to_a_later_step_is_refused(tmp_path):
    path = write(
        tmp_path,
        """
name: flow
steps:
  - {id: first, type: llm, prompt: "{{x}}", input: {x: $.steps.second}}
  - {id: second, type: llm, prompt: hi}
""",
    )
    with pytest.raises(
        DefinitionError,
        match=r"step 'first' \(steps\[0\]\), field 'input': reads \$.steps.second, which is not an earlier step",
    ):
        load_definition(path)


def test_a_prompt_placeholder_without_input_is_refused(tmp_path):
    path = write(tmp_path, "name: flow\nsteps:\n  - {id: first, type: llm, prompt: 'Hello {{name}}'}\n")
    with pytest.raises(
        DefinitionError, match=r"step 'first' \(steps\[0\]\).*placeholder \{\{name\}\} has no entry in input"
    ):
        load_definition(path)


def test_an_unparseable_expression_is_refused(tmp_path):
    path = write(
        tmp_path, "name: flow\nsteps:\n  - {id: first, type: tool, tool: extract_text, input: {d: $.output.x}}\n"
    )
    with pytest.raises(DefinitionError, match=r"field 'input'.*must start with \$.input, \$.item or \$.steps"):
        load_definition(path)


def test_an_unknown_field_is_refused(tmp_path):
    path = write(tmp_path, "name: flow\nsteps:\n  - {id: first, type: llm, prompt: hi, temprature: 1}\n")
    with pytest.raises(DefinitionError, match=r"field 'temprature': Extra inputs are not permitted"):
        load_definition(path)


def test_the_name_must_match_the_file(tmp_path):
    path = write(tmp_path, "name: other\nsteps:\n  - {id: first, type: llm, prompt: hi}\n")
    with pytest.raises(DefinitionError, match="must match the file name"):
        load_definition(path)


def test_invalid_yaml_is_reported_with_the_file(tmp_path):
    path = write(tmp_path, "name: [flow\n")
    with pytest.raises(DefinitionError, match=f"{path}: not valid YAML"):
        load_definition(path)


def test_an_unknown_tool_is_named_with_the_registered_ones(tmp_path):
    path = write(tmp_path, "name: flow\nsteps:\n  - {id: fetch, type: tool, tool: teleport}\n")
    with pytest.raises(
        DefinitionError,
        match=r"step 'fetch' \(steps\[0\]\), field 'tool': unknown tool 'teleport'; "
        r"registered tools: .*extract_text",
    ):
        load_definition(path)


def load_steps(tmp_path: Path, steps: str) -> WorkflowDefinition:
    return load_definition(write(tmp_path, f"name: flow\nsteps:\n{steps}"))


def refused(tmp_path: Path, steps: str) -> str:
    path = write(tmp_path, f"name: flow\nsteps:\n{steps}")
    with pytest.raises(DefinitionError) as error:
        load_definition(path)
    message = str(error.value)
    assert message.startswith(f"{path}: ")
    return message.removeprefix(f"{path}: ")


TOOL = "{id: %s, type: tool, tool: extract_text, input: {document: %s}}"


def test_every_step_type_loads_and_nested_outputs_count_as_read(tmp_path):
    definition = load_steps(
        tmp_path,
        f"""
  - {TOOL % ("first", "$.input.doc")}
  - id: fan
    type: parallel
    on_failure: collect
    branches:
      one: [{TOOL % ("inside", "$.steps.first")}]
  - id: each
    type: map
    items: $.input.docs
    max_concurrency: 3
    steps:
      - {TOOL % ("per_item", "$.item")}
      - {{id: shape, type: transform, output: {{doc: $.steps.per_item.title, fan: $.steps.fan.one}}}}
  - {{id: pause, type: wait, until: $.input.when}}
  - id: route
    type: choice
    choices:
      - when: {{any: [{{var: $.input.n, greater_than: 2}}, {{not: {{var: $.input.s, is_present: true}}}}]}}
        then: [{{id: big, type: transform, output: {{n: $.input.n}}}}]
    otherwise: [{{id: small, type: wait, seconds: 0}}, {{id: done, type: transform, output: {{ok: true}}}}]
""",
    )
    assert [step.type for step in definition.steps] == ["tool", "parallel", "map", "wait", "choice"]
    each = definition.steps[2]
    assert isinstance(each, MapStep) and each.max_concurrency == 3 and not each.distributed
    assert definition.outputs_read_later() == {"first", "per_item", "fan", "route"}
    assert roots_from_outside(list(each.steps)) == ["steps.fan"]
    assert definition.roots_needed_by(each.steps[0]) == ["item"]


def test_a_map_defaults_to_ten_at_a_time(tmp_path):
    definition = load_steps(
        tmp_path, f"  - {{id: each, type: map, items: $.input.docs, steps: [{TOOL % ('x', '$.item')}]}}\n"
    )
    assert isinstance(definition.steps[0], MapStep) and definition.steps[0].max_concurrency == 10


def test_a_nested_step_error_names_its_path(tmp_path):
    message = refused(
        tmp_path,
        f"""
  - {TOOL % ("first", "$.input.doc")}
  - id: each
    type: map
    items: $.input.docs
    steps:
      - {{id: summarise, type: llm, prompt: hi, retry: {{max_attempts: 99}}}}
""",
    )
    assert message == (
        "step 'summarise' (steps[1].steps[0]), field 'retry.max_attempts': Input should be less than or equal to 20"
    )


def test_an_unknown_tool_in_a_parallel_branch_names_the_branch(tmp_path):
    message = refused(tmp_path, "  - {id: fan, type: parallel, branches: {one: [{id: x, type: tool, tool: nope}]}}\n")
    assert message.startswith("step 'x' (steps[0].branches.one[0]), field 'tool': unknown tool 'nope'")


def test_an_unknown_type_in_a_choice_branch_is_named(tmp_path):
    message = refused(
        tmp_path,
        "  - {id: c, type: choice, choices: [{when: {var: $.input.x, equals: 1}, then: [{id: x, type: teleport}]}],"
        " otherwise: [{id: y, type: transform, output: {a: 1}}]}\n",
    )
    assert message.startswith("step 'x' (steps[0].choices[0].then[0]), field 'type': Input tag 'teleport'")


def test_a_condition_needs_exactly_one_rule(tmp_path):
    message = refused(
        tmp_path,
        "  - {id: c, type: choice, choices: [{when: {all: [{var: $.input.x, equals: 1, matches: 'a*'}]},"
        " then: [{id: x, type: transform, output: {a: 1}}]}], otherwise: [{id: y, type: transform, output: {a: 1}}]}\n",
    )
    assert message.startswith("step 'c' (steps[0]), field 'choices[0].when.all[0]': a condition needs exactly one of")


def test_a_comparison_needs_a_var(tmp_path):
    message = refused(
        tmp_path,
        "  - {id: c, type: choice, choices: [{when: {equals: 1}, then: [{id: x, type: transform, output: {a: 1}}]}],"
        " otherwise: [{id: y, type: transform, output: {a: 1}}]}\n",
    )
    assert message == "step 'c' (steps[0]), field 'choices[0].when': 'equals' needs a 'var' expression"


def test_ids_are_unique_across_nested_steps(tmp_path):
    message = refused(
        tmp_path,
        f"  - {TOOL % ('x', '$.input.d')}\n"
        f"  - {{id: each, type: map, items: $.input.docs, steps: [{TOOL % ('x', '$.item')}]}}\n",
    )
    assert message == "step 'x' (steps[1].steps[0]), field 'id': step id 'x' is used twice"


def test_a_step_inside_a_container_is_read_through_the_containers_output(tmp_path):
    message = refused(
        tmp_path,
        f"  - {{id: each, type: map, items: $.input.docs, steps: [{TOOL % ('inner', '$.item')}]}}\n"
        "  - {id: after, type: transform, output: {x: $.steps.inner.title}}\n",
    )
    assert message == (
        "step 'after' (steps[1]), field 'output': reads $.steps.inner, which runs inside 'each'; "
        "read 'each''s output instead"
    )


def test_a_branch_cannot_read_another_branch(tmp_path):
    message = refused(
        tmp_path,
        f"  - {{id: fan, type: parallel, branches: {{a: [{TOOL % ('one', '$.input.d')}], "
        f"b: [{TOOL % ('two', '$.steps.one')}]}}}}\n",
    )
    assert message.startswith(
        "step 'two' (steps[0].branches.b[0]), field 'input': reads $.steps.one, which runs inside 'fan'"
    )


def test_a_container_cannot_read_its_own_output(tmp_path):
    message = refused(
        tmp_path, f"  - {{id: each, type: map, items: $.input.d, steps: [{TOOL % ('x', '$.steps.each')}]}}\n"
    )
    assert message == "step 'x' (steps[0].steps[0]), field 'input': reads $.steps.each, which is not an earlier step"


def test_item_is_only_readable_inside_a_map(tmp_path):
    message = refused(tmp_path, f"  - {TOOL % ('x', '$.item.doc')}\n")
    assert message == "step 'x' (steps[0]), field 'input': reads $.item outside a map"


def test_a_map_item_expression_is_checked(tmp_path):
    message = refused(tmp_path, f"  - {{id: each, type: map, items: documents, steps: [{TOOL % ('x', '$.item')}]}}\n")
    assert message == "step 'each' (steps[0]), field 'items': 'documents' is not an expression: it must start with $."


def test_a_wait_has_no_output_and_cannot_end_a_list(tmp_path):
    last = refused(tmp_path, f"  - {TOOL % ('x', '$.input.d')}\n  - {{id: pause, type: wait, seconds: 5}}\n")
    assert last.startswith("step 'pause' (steps[1]): the last step of a list gives its output")
    read = refused(
        tmp_path,
        "  - {id: pause, type: wait, seconds: 5}\n  - {id: after, type: transform, output: {x: $.steps.pause}}\n",
    )
    assert read == (
        "step 'after' (steps[1]), field 'output': reads $.steps.pause, which has no output "
        "(a wait, or a choice without 'otherwise')"
    )


def test_a_wait_needs_seconds_or_until(tmp_path):
    message = refused(
        tmp_path,
        "  - {id: pause, type: wait, seconds: 5, until: $.input.t}\n  - {id: y, type: transform, output: {a: 1}}\n",
    )
    assert message == "step 'pause' (steps[0]): a wait needs exactly one of 'seconds' and 'until'"


def test_a_choice_without_otherwise_cannot_end_a_list(tmp_path):
    message = refused(
        tmp_path,
        "  - {id: c, type: choice, choices: [{when: {var: $.input.x, equals: 1},"
        " then: [{id: x, type: transform, output: {a: 1}}]}]}\n",
    )
    assert message.startswith("step 'c' (steps[0]): the last step of a list")


def test_a_parallel_branch_needs_steps(tmp_path):
    message = refused(tmp_path, "  - {id: fan, type: parallel, branches: {one: []}}\n")
    assert message == "step 'fan' (steps[0]), field 'branches': branch 'one' has no steps"


def test_a_transform_refuses_expressions_inside_lists(tmp_path):
    message = refused(tmp_path, "  - {id: t, type: transform, output: {xs: [$.input.a]}}\n")
    assert (
        message
        == "step 't' (steps[0]), field 'output': '$.input.a': an expression cannot be inside a list in a transform"
    )


def test_a_distributed_map_must_be_outside_maps_and_parallels(tmp_path):
    inner = f"{{id: inner, type: map, items: $.input.d, distributed: true, steps: [{TOOL % ('x', '$.item')}]}}"
    message = refused(tmp_path, f"  - {{id: fan, type: parallel, branches: {{one: [{inner}]}}}}\n")
    assert message == (
        "step 'inner' (steps[0].branches.one[0]), field 'distributed': "
        "a distributed map cannot be inside a map or a parallel"
    )
    assert isinstance(load_steps(tmp_path, f"  - {inner}\n").steps[0], MapStep)


@pytest.mark.parametrize(
    ("schema", "problem"),
    [("{type: objekt}", "Unknown type"), ("{type: object, required: 5}", "required must be an array")],
)
def test_an_input_schema_that_is_no_json_schema_is_refused_when_the_definition_loads(tmp_path, schema, problem):
    path = write(tmp_path, f"name: flow\ninput_schema: {schema}\nsteps:\n  - {{id: first, type: llm, prompt: hi}}\n")
    with pytest.raises(DefinitionError) as error:
        load_definition(path)
    assert str(error.value).startswith(f"{path}: field 'input_schema': ")
    assert f"not a valid JSON Schema: {problem}" in str(error.value)


def test_a_proposal_schema_that_is_no_json_schema_is_refused(tmp_path):
    step = "{id: ask, type: approval, summary: s, proposal: {a: 1}, group: g, proposal_schema: {minLength: x}}"
    path = write(tmp_path, f"name: flow\nsteps:\n  - {step}\n")
    with pytest.raises(DefinitionError, match=r"step 'ask' \(steps\[0\]\), field 'proposal_schema'.*minLength must be"):
        load_definition(path)
