"""The built-in document tools, called through the registry as the step runtime calls them."""

from __future__ import annotations

from typing import Any

import pytest

from sutram.errors import InvalidStepInput
from sutram.tools import ToolContext, get_tool

CONTEXT = ToolContext(tenant="acme", run_id="run-1", step_path="extract", attempt=1)


def extract(content: str, format: str | None = None, title: str = "Doc") -> dict[str, Any]:
    document = {"title": title, "content": content} | ({"format": format} if format else {})
    return get_tool("extract_text").run({"document": document}, CONTEXT)


def test_plain_text_is_normalised_keeping_paragraph_breaks() -> None:
    result = extract("  Ada   Lovelace\twrote notes.  \r\nThey were long.\n\n\n\n  Babbage built   engines. ")

    assert result == {
        "title": "Doc",
        "text": "Ada Lovelace wrote notes.\nThey were long.\n\nBabbage built engines.",
        "word_count": 10,
        "characters": 65,
    }


def test_html_loses_tags_scripts_and_styles_and_keeps_blocks_as_paragraphs() -> None:
    html = """<html><head><title>Ignored</title><style>p { color: red }</style></head>
    <body>
      <h1>Notes &amp; Queries</h1>
      <p>Ada   worked with
         <b>Charles Babbage</b>.<br>In London.</p>
      <script>track("visit");</script>
      <ul>
        <li>Analytical Engine</li>
        <li>Difference Engine</li>
      </ul>
      <table><tr><td>1843</td><td>Notes</td></tr></table>
      <!-- a comment -->
    </body></html>"""

    result = extract(html, "html", title="Ada")

    assert result["text"] == (
        "Notes & Queries\n\n"
        "Ada worked with Charles Babbage.\nIn London.\n\n"
        "Analytical Engine\nDifference Engine\n\n"
        "1843 Notes"
    )
    assert result["word_count"] == 16
    assert result["characters"] == len(result["text"])
    assert result["title"] == "Ada"


def test_markdown_loses_its_syntax_but_keeps_link_text_and_code() -> None:
    markdown = """# The *Analytical* Engine #

Designed by **Charles Babbage** and described by [Ada Lovelace](https://example.org/ada "Ada").
Her `notes_*g*` include ![a table](table.png) of __Bernoulli__ numbers, not_emphasis here.

- [x] first item
* second item
1. third item

> A quoted ~~line~~ sentence.

```python
# a comment, not a heading
print(*args)
```

Setext heading
--------------

[ref]: https://example.org
See [the notes][ref] or <https://example.org/notes>.
"""

    result = extract(markdown, "markdown")

    assert result["text"] == (
        "The Analytical Engine\n\n"
        "Designed by Charles Babbage and described by Ada Lovelace.\n"
        "Her notes_*g* include a table of Bernoulli numbers, not_emphasis here.\n\n"
        "first item\nsecond item\nthird item\n\n"
        "A quoted line sentence.\n\n"
        "# a comment, not a heading\nprint(*args)\n\n"
        "Setext heading\n\n"
        "See the notes or https://example.org/notes."
    )
    assert result["word_count"] == 46


def test_empty_content_gives_empty_text() -> None:
    assert extract("   \n\n  ") == {"title": "Doc", "text": "", "word_count": 0, "characters": 0}


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"document": {"title": "T", "content": "x", "format": "pdf"}}, "document.format"),
        ({"document": {"title": "", "content": "x"}}, "document.title"),
        ({"document": {"title": "T"}}, "document.content"),
        ({}, "document"),
        ({"document": {"title": "T", "content": "x"}, "doc": 1}, "doc"),
    ],
)
def test_extract_text_rejects_bad_arguments_naming_the_field(args: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidStepInput, match=rf"tool 'extract_text': {field}: "):
        get_tool("extract_text").run(args, CONTEXT)


def test_extract_text_ignores_extra_document_fields_from_the_run_input() -> None:
    result = get_tool("extract_text").run({"document": {"title": "T", "content": "x", "source": "s3"}}, CONTEXT)

    assert result["text"] == "x"


def report(entities: list[dict[str, Any]], summary: str = "Ada wrote the first program. ") -> dict[str, Any]:
    args = {"title": "Ada", "word_count": 120, "summary": summary, "entities": entities}
    return get_tool("assemble_report").run(args, CONTEXT)


def test_report_sorts_entities_by_mentions_then_name_and_renders_markdown() -> None:
    result = report(
        [
            {"name": "London", "mentions": 1},
            {"name": "Charles Babbage", "mentions": 3},
            {"name": "Ada Lovelace", "mentions": 3},
            {"name": "Ada Lovelace ", "mentions": 2, "type": "person"},
        ]
    )

    assert result == {
        "title": "Ada",
        "word_count": 120,
        "summary": "Ada wrote the first program.",
        "entities": [
            {"name": "Ada Lovelace", "mentions": 5},
            {"name": "Charles Babbage", "mentions": 3},
            {"name": "London", "mentions": 1},
        ],
        "top_entity": "Ada Lovelace",
        "markdown": (
            "# Ada\n\n120 words.\n\n## Summary\n\nAda wrote the first program.\n\n## Entities\n\n"
            "- **Ada Lovelace**: 5 mentions\n- **Charles Babbage**: 3 mentions\n- **London**: 1 mention\n"
        ),
    }


def test_report_without_entities_has_no_top_entity() -> None:
    result = report([], summary="")

    assert result["entities"] == []
    assert result["top_entity"] is None
    assert result["markdown"] == (
        "# Ada\n\n120 words.\n\n## Summary\n\nNo summary.\n\n## Entities\n\nNo entities found.\n"
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ({"word_count": -1}, "word_count"),
        ({"word_count": "many"}, "word_count"),
        ({"entities": [{"name": "Ada"}]}, "entities.0.mentions"),
        ({"entities": [{"name": "", "mentions": 1}]}, "entities.0.name"),
        ({"entities": {"name": "Ada"}}, "entities"),
        ({"summary": None}, "summary"),
    ],
)
def test_assemble_report_rejects_bad_arguments_naming_the_field(args: dict[str, Any], field: str) -> None:
    valid = {"title": "Ada", "word_count": 120, "summary": "s", "entities": []}

    with pytest.raises(InvalidStepInput, match=rf"tool 'assemble_report': {field}: "):
        get_tool("assemble_report").run(valid | args, CONTEXT)
