"""The correlation id: accepted from outside only when sane, logged on every line."""

import json
import logging

from bus.correlation import clean_correlation_id, correlation_context, get_correlation_id
from passline.logging import CorrelationIdFilter, JsonFormatter


def test_a_sane_request_id_is_kept_and_anything_else_replaced():
    assert clean_correlation_id("req-1234abcd") == "req-1234abcd"
    for bad in [None, "", "short", "x" * 200, "evil\nINFO forged line", "a b c d e f g h"]:
        replaced = clean_correlation_id(bad)
        assert replaced != bad and len(replaced) == 32


def test_context_restores_the_previous_id():
    assert get_correlation_id() is None
    with correlation_context("outer-000001"):
        with correlation_context("inner-000002"):
            assert get_correlation_id() == "inner-000002"
        assert get_correlation_id() == "outer-000001"
    assert get_correlation_id() is None


def test_json_lines_carry_the_correlation_id_and_extra_fields():
    record = logging.LogRecord("passline.test", logging.INFO, __file__, 1, "order %s placed", (7,), None)
    record.order_id = 7
    with correlation_context("corr-12345678"):
        CorrelationIdFilter().filter(record)
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "order 7 placed"
    assert line["correlation_id"] == "corr-12345678"
    assert line["order_id"] == 7 and line["level"] == "INFO"
