"""archipelago.bus.schema: message format, validation, error replies."""
import json

import pytest

from archipelago import errors
from archipelago.bus import schema
from archipelago.bus.errors import MessageError
from archipelago.bus.schema import Field


def test_round_trip():
    msg = schema.request("map", volume="v1")
    assert schema.decode(schema.encode(msg)) == msg
    assert msg["v"] == schema.VERSION and len(msg["request_id"]) == 32


@pytest.mark.parametrize("body, why", [
    (b"{not json", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b'{"v": 2, "action": "x", "request_id": "r"}', "version"),
    (b'{"v": 1, "request_id": "r"}', "no 'action'"),
    (b'{"v": 1, "action": "map"}', "request_id"),
    (b'{"v": 1, "action": "map", "request_id": "a b"}', "request_id"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_decode_rejects(body, why):
    with pytest.raises(MessageError, match=why):
        schema.decode(body)


def test_size_limits():
    big = schema.request("map", blob="x" * schema.MAX_REQUEST)
    with pytest.raises(MessageError, match="exceeds"):
        schema.encode(big)
    with pytest.raises(MessageError, match="exceeds"):
        schema.decode(json.dumps(big).encode())


def test_validate_types_and_checkers():
    fields = {"size": Field(int, check=schema.validate_size), "force": Field(bool, False),
              "host": Field(str, check=schema.validate_host)}
    msg = schema.request("x", size=4096, host="compute-0-0")
    assert schema.validate(msg, fields) == {"size": 4096, "force": None, "host": "compute-0-0"}
    with pytest.raises(MessageError, match="missing field 'size'"):
        schema.validate(schema.request("x", host="h"), fields)
    with pytest.raises(MessageError, match="must be an integer, not str"):
        schema.validate(schema.request("x", size="10G", host="h"), fields)
    with pytest.raises(MessageError, match="must be an integer, not bool"):
        schema.validate(schema.request("x", size=True, host="h"), fields)
    with pytest.raises(MessageError, match="unknown field"):
        schema.validate(schema.request("x", size=1, host="h", bogus=1), fields)
    with pytest.raises(errors.InvalidArgument, match="host name"):
        schema.validate(schema.request("x", size=512, host="../etc"), fields)


def test_failure_maps_to_error_classes():
    req = schema.request("map")
    reply = schema.failure(req, errors.Busy("in use"))
    assert reply["status"] == "error" and reply["kind"] == "Busy"
    with pytest.raises(errors.Busy, match="in use"):
        schema.raise_for_error(reply)
    assert schema.failure(req, MessageError("bad"))["kind"] == "InvalidArgument"
    assert schema.failure(req, ValueError("x"))["kind"] == "ArchipelagoError"
    assert schema.raise_for_error(schema.success(req, a=1))["a"] == 1
