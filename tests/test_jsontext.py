"""`--json`'s fast text is `json.dumps(indent=2, ensure_ascii=False)` byte for byte."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronctl.jsontext import indented_json
from cronctl.records import Status

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.sampled_from(list(Status))  # a str subclass, as the records' enums are
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=8), inner, max_size=5)
        | st.dictionaries(st.integers() | st.booleans() | st.none(), inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(DOCUMENTS)
def test_the_text_is_the_json_modules(document):
    assert indented_json(document) == json.dumps(document, indent=2, ensure_ascii=False)


@pytest.mark.parametrize(
    "document",
    [
        [],
        {},
        [[]],
        {"a": {}},
        [{"name": 'é\n"x"', "next": None, "rate": 0.5, "on": True}] * 3,
        {"tasks": [{"a": [1, [2, {}]], "b": {"c": []}}], "left_out": 0},
        "just a string",
        7,
    ],
)
def test_listed_shapes(document):
    assert indented_json(document) == json.dumps(document, indent=2, ensure_ascii=False)
