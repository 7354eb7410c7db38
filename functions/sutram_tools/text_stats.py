"""An example user tool: the most frequent words of a text.

The pattern for any tool:

1. One pydantic model for the arguments. The step's `input` mapping is validated against it,
   and a mismatch fails the step with InvalidStepInput naming the field, before any work.
2. One function taking (args, context), decorated with `@tool(name, delivery=...)`, returning
   JSON-serialisable data: it becomes the step's output, `$.steps.<id>` to later steps.

Delivery mode. This tool is pure: the same text always gives the same result and nothing
outside changes, so running it twice is harmless and it declares `at_least_once`. A tool that
changes another system (creates a ticket, charges a card, sends an email) is retried after a
crash as well, so it must make the second call a no-op: pass `context.idempotency_key`, which is
the same on every attempt of the same step in the same run, to that system, e.g.

    requests.post(url, json=payload, headers={"Idempotency-Key": context.idempotency_key})

or store it with what you create and look it up first. When the system offers no way to do
that, declare `delivery="at_most_once"`: Sutram then never starts the call a second time, and a
crash mid-call stops the step with OutcomeUnknown for an operator to resolve.

Raise TransientStepError for failures worth retrying and StepFailed for the others
(from sutram.errors); the workflow's retry policy does the rest.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sutram.tools import ToolContext, tool

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")  # letters, with inner apostrophes: don't


class WordFrequenciesArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")  # an unknown argument is a typo in the workflow

    text: str
    top: int = Field(10, ge=1, le=100)
    min_length: int = Field(1, ge=1, le=50)  # shorter words are not counted


@tool("word_frequencies", delivery="at_least_once")
def word_frequencies(args: WordFrequenciesArgs, context: ToolContext) -> dict[str, Any]:
    """The `top` most frequent words (case-insensitive), most frequent first, then alphabetical."""
    counts = Counter(w for w in (m.lower() for m in _WORD.findall(args.text)) if len(w) >= args.min_length)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[: args.top]
    return {
        "total_words": sum(counts.values()),
        "distinct_words": len(counts),
        "top": [{"word": word, "count": count} for word, count in ranked],
    }
