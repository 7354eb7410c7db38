"""The registry finds the built-in tools and the users' tools in `sutram_tools`."""

from __future__ import annotations

import pytest

from sutram.errors import InvalidStepInput
from sutram.tools import ToolContext, get_tool, tool_names

CONTEXT = ToolContext(tenant="acme", run_id="run-1", step_path="stats", attempt=2)


def test_registry_holds_the_built_in_and_example_tools() -> None:
    assert {"extract_text", "assemble_report", "http_fetch", "word_frequencies"} <= tool_names()


@pytest.mark.parametrize("name", ["extract_text", "assemble_report", "http_fetch", "word_frequencies"])
def test_built_in_and_example_tools_may_be_retried(name: str) -> None:
    assert get_tool(name).delivery == "at_least_once"
    assert get_tool(name).description


def test_the_example_user_tool_counts_words() -> None:
    result = get_tool("word_frequencies").run(
        {"text": "The engine, the ENGINE's notes; the 1843 notes. Don't panic.", "top": 3}, CONTEXT
    )

    assert result == {
        "total_words": 9,
        "distinct_words": 6,
        "top": [{"word": "the", "count": 3}, {"word": "notes", "count": 2}, {"word": "don't", "count": 1}],
    }


def test_the_example_user_tool_skips_short_words() -> None:
    result = get_tool("word_frequencies").run({"text": "a an the engine", "min_length": 4}, CONTEXT)

    assert result["top"] == [{"word": "engine", "count": 1}]


def test_the_example_user_tool_names_a_bad_argument() -> None:
    with pytest.raises(InvalidStepInput, match="tool 'word_frequencies': top: "):
        get_tool("word_frequencies").run({"text": "x", "top": 0}, CONTEXT)
