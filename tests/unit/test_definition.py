"""Workflow definitions: invalid files fail at load and name the file, the step and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sutram.definition import DefinitionError, load_all, load_definition

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_shipped_workflow_loads():
    names = [definition.name for definition in load_all(REPO / "workflows")]
    assert "document-analysis" in names


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
    with pytest.raises(DefinitionError, match=r"step 'first' reads \$.steps.second, which is not an earlier step"):
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
    with pytest.raises(DefinitionError, match=r"field 'input'.*must start with \$.input or \$.steps"):
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
