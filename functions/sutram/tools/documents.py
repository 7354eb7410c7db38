"""Built-in document tools: `extract_text` turns a document into clean text and
`assemble_report` turns the analysis steps' results into a report."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sutram.tools import ToolContext, tool


class _Args(BaseModel):
    # A tool's arguments come from the step's input mapping: an unknown name is a typo there.
    model_config = ConfigDict(extra="forbid")


class Document(BaseModel):
    # Extra fields are ignored: documents come from the run's input, which may carry more.
    title: str = Field(min_length=1)
    content: str
    format: Literal["text", "markdown", "html"] = "text"


class ExtractTextArgs(_Args):
    document: Document


@tool("extract_text", delivery="at_least_once")
def extract_text(args: ExtractTextArgs, context: ToolContext) -> dict[str, Any]:
    """Plain text of a text, markdown or HTML document, with its word and character counts.

    Markup is removed (HTML tags, scripts and styles; markdown headings, emphasis, links, which
    keep their text, and code fences, which keep their code); runs of spaces become one space and
    paragraphs are separated by one blank line.
    """
    document = args.document
    if document.format == "html":
        raw = _html_text(document.content)
    elif document.format == "markdown":
        raw = _markdown_text(document.content)
    else:
        raw = document.content
    text = _normalise_whitespace(raw)
    return {"title": document.title, "text": text, "word_count": len(text.split()), "characters": len(text)}


def _normalise_whitespace(text: str) -> str:
    paragraphs = []
    for block in re.split(r"\n[^\S\n]*\n", text.replace("\r\n", "\n").replace("\r", "\n")):
        lines = (" ".join(line.split()) for line in block.split("\n"))
        paragraph = "\n".join(line for line in lines if line)
        if paragraph:
            paragraphs.append(paragraph)
    return "\n\n".join(paragraphs)


# --- HTML ---------------------------------------------------------------------------------------

_HTML_SKIPPED = {"script", "style", "noscript", "template", "title"}
# What an element's boundary becomes in the text: a blank line, a line break or a space.
_HTML_BREAKS = {
    **dict.fromkeys(
        ["address", "article", "aside", "blockquote", "div", "dl", "figcaption", "figure", "footer", "form",
         "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "main", "nav", "ol", "p", "pre", "section",
         "table", "ul"],
        "\n\n",
    ),
    **dict.fromkeys(["br", "dd", "dt", "li", "tr"], "\n"),
    **dict.fromkeys(["td", "th"], " "),
}  # fmt: skip


class _HTMLText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0  # depth inside elements whose text is not content
        self._preformatted = 0  # depth inside <pre>

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIPPED:
            self._skipping += 1
        self._preformatted += tag == "pre"
        self.parts.append(_HTML_BREAKS.get(tag, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        if tag == "pre":
            self._preformatted = max(0, self._preformatted - 1)
        # Only blocks break after themselves too: a line break after each list item, added to the
        # one before the next item, would make a blank line between them.
        if _HTML_BREAKS.get(tag) == "\n\n":
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            # Outside <pre>, a line break in the source is only a space, as a browser shows it.
            self.parts.append(data if self._preformatted else re.sub(r"\s+", " ", data))


def _html_text(html: str) -> str:
    parser = _HTMLText()
    parser.feed(html)
    parser.close()
    return "".join(parser.parts)


# --- Markdown -----------------------------------------------------------------------------------

_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$")
_RULE = re.compile(r"^\s{0,3}([-*_=])(?:\s*\1){2,}\s*$")  # thematic breaks and setext underlines
_REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+\S+")
# Blockquote markers, then a list marker, then a task box: "> - [x] done" -> "done".
_BLOCK_PREFIX = re.compile(r"^\s*(?:>\s?)*(?:\s*(?:[-*+]|\d{1,9}[.)])\s+)?(?:\[[ xX]\]\s+)?")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_INLINE = [
    (re.compile(r"!\[([^\]]*)\]\([^)]*\)"), r"\1"),  # image -> alt text
    (re.compile(r"\[([^\]]+)\]\([^)]*\)"), r"\1"),  # [text](url) -> text
    (re.compile(r"\[([^\]]+)\]\[[^\]]*\]"), r"\1"),  # [text][ref] -> text
    (re.compile(r"<((?:https?|mailto):[^>\s]+)>"), r"\1"),  # <https://...> -> https://...
    (re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1"), r"\2"),  # strong
    (re.compile(r"\*(?=\S)(.+?)(?<=\S)\*"), r"\1"),  # emphasis
    (re.compile(r"(?<!\w)_(?=\S)(.+?)(?<=\S)_(?!\w)"), r"\1"),  # emphasis, but not snake_case
    (re.compile(r"~~(?=\S)(.+?)(?<=\S)~~"), r"\1"),  # strikethrough
]


def _markdown_text(markdown: str) -> str:
    lines: list[str] = []
    fence: str | None = None
    for line in markdown.replace("\r\n", "\n").split("\n"):
        opening = _FENCE.match(line)
        if fence is not None:
            if opening and opening.group(1)[0] == fence[0] and len(opening.group(1)) >= len(fence):
                fence = None
                lines.append("")
            else:
                lines.append(line)  # code stays as written
        elif opening:
            fence = opening.group(1)
            lines.append("")
        elif heading := _HEADING.match(line):
            lines.extend(["", _markdown_inline(heading.group(1)), ""])
        elif _RULE.match(line) or _REFERENCE_DEFINITION.match(line):
            lines.append("")
        else:
            lines.append(_markdown_inline(_BLOCK_PREFIX.sub("", line, count=1)))
    return "\n".join(lines)


def _markdown_inline(line: str) -> str:
    # Code spans keep their content verbatim; markup is removed from the text between them.
    pieces = []
    position = 0
    for span in _CODE_SPAN.finditer(line):
        pieces.append(_strip_inline_markup(line[position : span.start()]))
        pieces.append(span.group(2).strip())
        position = span.end()
    pieces.append(_strip_inline_markup(line[position:]))
    return "".join(pieces)


def _strip_inline_markup(text: str) -> str:
    for pattern, replacement in _INLINE:
        text = pattern.sub(replacement, text)
    return text


# --- Report -------------------------------------------------------------------------------------


class Entity(BaseModel):
    name: str = Field(min_length=1)
    mentions: int = Field(ge=0)


class AssembleReportArgs(_Args):
    title: str
    word_count: int = Field(ge=0)
    summary: str
    entities: list[Entity]


@tool("assemble_report", delivery="at_least_once")
def assemble_report(args: AssembleReportArgs, context: ToolContext) -> dict[str, Any]:
    """A report of a document's analysis: the data, plus the same content rendered as markdown.

    Entities are ordered by mentions (most first), then by name; a name the model listed twice
    is merged into one entry whose mentions are the sum.
    """
    mentions: dict[str, int] = {}
    for entity in args.entities:
        name = entity.name.strip()
        mentions[name] = mentions.get(name, 0) + entity.mentions
    entities = [
        {"name": name, "mentions": count} for name, count in sorted(mentions.items(), key=lambda e: (-e[1], e[0]))
    ]
    summary = args.summary.strip()
    return {
        "title": args.title,
        "word_count": args.word_count,
        "summary": summary,
        "entities": entities,
        "top_entity": entities[0]["name"] if entities else None,
        "markdown": _report_markdown(args.title, args.word_count, summary, entities),
    }


def _report_markdown(title: str, word_count: int, summary: str, entities: list[dict[str, Any]]) -> str:
    entity_lines = [
        f"- **{e['name']}**: {e['mentions']} mention{'' if e['mentions'] == 1 else 's'}" for e in entities
    ] or ["No entities found."]
    return "\n".join(
        [f"# {title}", "", f"{word_count} words.", "", "## Summary", "", summary or "No summary.", "",
         "## Entities", "", *entity_lines, ""]
    )  # fmt: skip
