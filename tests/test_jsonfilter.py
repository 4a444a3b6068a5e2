"""CLN's ``filter`` template, walked as lightningd's ``common/json_filter.c`` walks it.

The expected outputs follow the C state machine step by step (down / ok / up on every
member, as ``json_stream`` calls them while writing), including its quirks; the first case
is the example of CLN's lightningd-rpc(7) "FIELD FILTERING" section.
"""

from __future__ import annotations

from typing import Any

import pytest
from invreq import jsonfilter
from invreq.errors import InvalidParams


def run(template: Any, result: Any) -> Any:
    return jsonfilter.apply(jsonfilter.parse(template), result)


TRANSACTIONS = {
    "transactions": [
        {
            "hash": "3b15",
            "blockheight": 102,
            "inputs": [{"txid": "e9a7", "index": 0}],
            "outputs": [
                {"index": 0, "amount_msat": 1000, "type": "deposit", "scriptPubKey": "a9"},
                {"index": 1, "amount_msat": 4998, "scriptPubKey": "a9"},
            ],
        },
        {
            "hash": "3a5e",
            "outputs": [{"index": 0, "amount_msat": 8947, "type": "channel_funding"}],
        },
    ]
}


def test_the_lightningd_rpc_manual_example() -> None:
    template = {"transactions": [{"outputs": [{"amount_msat": True, "type": True}]}]}
    assert run(template, TRANSACTIONS) == {
        "transactions": [
            {"outputs": [{"amount_msat": 1000, "type": "deposit"}, {"amount_msat": 4998}]},
            {"outputs": [{"amount_msat": 8947, "type": "channel_funding"}]},
        ]
    }


def test_order_is_the_results_and_unknown_fields_are_simply_absent() -> None:
    result = {"a": 1, "b": 2, "c": 3}
    assert list(run({"c": True, "zzz": True, "a": True}, result)) == ["a", "c"]
    assert run({"nothing": True}, result) == {}


def test_true_on_an_array_keeps_it_whole() -> None:
    assert run({"transactions": True}, TRANSACTIONS) == TRANSACTIONS


def test_true_on_an_object_keeps_its_containers_not_its_plain_values() -> None:
    # lightningd checks a plain member of a `true` object by name (and there are none).
    result = {"o": {"x": 1, "inner": {"y": 2}, "list": [1, 2]}, "k": 3}
    assert run({"o": True}, result) == {"o": {"inner": {"y": 2}, "list": [1, 2]}}


def test_an_empty_template_keeps_top_level_containers_only() -> None:
    assert run({}, {"x": 1, "arr": [1], "obj": {"y": 2}}) == {"arr": [1], "obj": {"y": 2}}


def test_nested_arrays_and_objects() -> None:
    result = {"grid": [[{"v": 1, "w": 2}, {"v": 3}], [{"w": 4}]], "meta": {"n": 2, "m": 3}}
    assert run({"grid": [[{"v": True}]], "meta": {"m": True}}, result) == {
        "grid": [[{"v": 1}, {"v": 3}], [{}]],
        "meta": {"m": 3},
    }


def test_plain_values_in_a_kept_array_are_kept() -> None:
    assert run({"ids": [{"x": True}]}, {"ids": ["a", "b"]}) == {"ids": ["a", "b"]}


def test_an_object_template_on_an_array_warns() -> None:
    out = run({"invoicerequests": {"invreq_id": True}}, {"invoicerequests": [{"invreq_id": "a"}]})
    assert out == {
        "invoicerequests": [],
        "warning_parameter_filter": ".invoicerequests is an array",
    }


def test_an_array_template_on_an_object_warns() -> None:
    result = {"info": {"node": {"id": "02"}, "n": 1}}
    out = run({"info": [{"node": True}]}, result)
    assert out == {"info": {}, "warning_parameter_filter": ".info is an object"}


def test_a_warning_deep_inside_names_the_path() -> None:
    result = {"a": [{"b": [{"c": 1}]}]}
    out = run({"a": [{"b": {"c": True}}]}, result)
    assert out["warning_parameter_filter"] == ".a[].b is an array"


def test_the_template_can_be_used_once_per_result_and_the_input_is_untouched() -> None:
    result = {"a": {"b": 1, "c": 2}}
    assert run({"a": {"b": True}}, result) == {"a": {"b": 1}}
    assert result == {"a": {"b": 1, "c": 2}}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ([{"a": True}], "filter: Expected object: invalid token '[{\"a\":true}]'"),
        ("invreq_id", "filter: Expected object: invalid token '\"invreq_id\"'"),
        (True, "filter: Expected object: invalid token 'true'"),
        (None, "filter: Expected object: invalid token 'null'"),
        ({"a": False}, "filter: value must be true: invalid token 'false'"),
        ({"a": 1}, "filter: value must be true: invalid token '1'"),
        ({"a": {"b": "yes"}}, "filter: value must be true: invalid token '\"yes\"'"),
        ({"a": []}, "filter: Arrays can only have one element: invalid token '[]'"),
        (
            {"a": [{"x": True}, {"y": True}]},
            'filter: Arrays can only have one element: invalid token \'[{"x":true},{"y":true}]\'',
        ),
    ],
)
def test_bad_templates_are_refused_as_lightningd_refuses_them(template: Any, message: str) -> None:
    with pytest.raises(InvalidParams) as e:
        jsonfilter.parse(template)
    assert e.value.code == -32602 and e.value.message == message
