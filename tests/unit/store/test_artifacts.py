"""sutram.store.artifacts: a large value goes to S3, keeping in state the parts Step Functions reads."""

from __future__ import annotations

import json

import pytest

from sutram import wiring
from sutram.errors import TooLargeForState
from sutram.store.artifacts import MAX_LIST_BYTES, REF, SIZE, ArtifactStore


@pytest.fixture
def store(aws_env: None) -> ArtifactStore:
    return wiring.artifact_store()  # offload threshold: 1024 bytes


def test_a_small_value_stays_inline_and_a_large_one_keeps_only_the_named_parts(store: ArtifactStore) -> None:
    assert store.offload_if_large("acme", {"label": "x"}, [("label",)]) == {"label": "x"}

    value = {"label": "refund", "body": "b" * 5000, "meta": {"kind": "pdf", "pages": "p" * 200}}
    reference = store.offload_if_large("acme", value, [("label",), ("meta", "kind"), ("missing",)])

    assert set(reference) == {REF, SIZE, "label", "meta"}
    assert reference["label"] == "refund"
    assert reference["meta"] == {"kind": "pdf", "pages": "p" * 200}  # a small part is kept whole
    assert store.load("acme", reference) == value  # the reference reads back the whole value
    assert len(json.dumps(reference)) < 3000


def test_a_list_an_inline_map_iterates_stays_a_list_with_each_large_item_offloaded(store: ArtifactStore) -> None:
    items = ["small", "L" * 3000, {"kind": "pdf", "text": "t" * 3000}]
    value = {"items": items, "other": "o" * 3000}

    reference = store.offload_if_large("acme", value, [("items", "*"), ("items", "*", "kind")])

    kept = reference["items"]
    assert kept[0] == "small" and REF in kept[1]
    assert kept[2]["kind"] == "pdf" and REF in kept[2]
    assert store.load_all("acme", reference) == value  # references inside, at any depth, read back


def test_a_list_too_long_for_the_state_even_item_by_item_names_where_and_what_to_do(store: ArtifactStore) -> None:
    rows = [f"row {index:05d} " * 8 for index in range(MAX_LIST_BYTES // 50)]

    with pytest.raises(TooLargeForState) as raised:
        store.offload_if_large("acme", {"rows": rows}, [("rows", "*")], "input")

    assert str(raised.value).startswith(f"input.rows: a list of {len(rows)} items")
    assert "distributed: true" in str(raised.value)
