"""RPC over the bus: answers, typed business errors, time-outs, pipelined calls, a batched server."""

from __future__ import annotations

import logging
import threading

import pytest

from bus.rpc import RemoteError, RpcClient, RpcTimeout
from tests.broker import queue_depth
from tests.busapp.consumers import TEST_ADD, test_rpc
from tests.support import RecordingRunner, wait_until


@pytest.fixture
def rpc_server(bus, run_consumers):
    running = run_consumers(test_rpc)
    wait_until(lambda: queue_depth(bus, "test.rpc")[1] == 1, what="the RPC server")
    return running.worker


def test_rpc_returns_the_servers_answer(rpc_server):
    client = RpcClient()
    try:
        assert client.call(TEST_ADD, {"a": 2, "b": 3}) == 5
        assert [client.call(TEST_ADD, {"a": i, "b": i}) for i in range(5)] == [0, 2, 4, 6, 8]
    finally:
        client.close()


def test_rpc_business_error_comes_back_typed(rpc_server):
    client = RpcClient()
    try:
        with pytest.raises(RemoteError) as error:
            client.call(TEST_ADD, {"a": 1, "b": 1, "fail": "business"})
        assert error.value.code == "does_not_add_up"
        with pytest.raises(RemoteError) as crash:
            client.call(TEST_ADD, {"a": 1, "b": 1, "fail": "crash"})
        assert crash.value.code == "internal_error"
    finally:
        client.close()


def test_rpc_timeout_is_its_own_error_and_a_late_reply_is_ignored(rpc_server):
    client = RpcClient()
    try:
        with pytest.raises(RpcTimeout):
            client.call(TEST_ADD, {"a": 1, "b": 1, "sleep": 1.5}, timeout=0.3)
        # the late reply to the first call arrives while the next call waits: it is not taken
        assert client.call(TEST_ADD, {"a": 10, "b": 20}, timeout=10) == 30
    finally:
        client.close()


def test_call_many_pipelines_and_answers_each_request_in_order(rpc_server):
    client = RpcClient()
    try:
        answers = client.call_many(TEST_ADD, [{"a": 1, "b": 2}, {"a": 1, "b": 1, "fail": "business"}, {"a": 3, "b": 4}])
        assert client.call_many(TEST_ADD, []) == []
    finally:
        client.close()
    assert answers[0] == 3 and answers[2] == 7
    assert isinstance(answers[1], RemoteError) and answers[1].code == "does_not_add_up"


def test_call_many_times_out_as_a_whole_and_its_late_replies_are_ignored(rpc_server):
    client = RpcClient()
    try:
        with pytest.raises(RpcTimeout):
            client.call_many(TEST_ADD, [{"a": 1, "b": 1}, {"a": 2, "b": 2, "sleep": 1.0}], timeout=0.3)
        # both late replies arrive while the next call waits: neither is taken for its own
        assert client.call_many(TEST_ADD, [{"a": 5, "b": 5}, {"a": 6, "b": 6}], timeout=10) == [10, 12]
    finally:
        client.close()


def test_a_batched_rpc_server_answers_each_command_and_falls_back_to_one_by_one_on_a_crash(bus, run_consumers, caplog):
    caplog.set_level(logging.INFO, logger="bus.runner")
    answers: dict[str, list] = {}

    def call_many(name: str, payloads: list[dict]) -> None:
        client = RpcClient()
        try:
            answers[name] = client.call_many(TEST_ADD, payloads, timeout=30)
        finally:
            client.close()

    def start(name: str, payloads: list[dict]) -> threading.Thread:
        thread = threading.Thread(target=call_many, args=(name, payloads), daemon=True)
        thread.start()
        return thread

    # given an RPC server that holds each batch until it is let go, its first one a single command
    running = run_consumers(test_rpc, runner=RecordingRunner, hold=True)
    server = running.worker
    try:
        wait_until(lambda: queue_depth(bus, "test.rpc")[1] == 1, what="the RPC server")
        callers = [start("first", [{"a": 0, "b": 0}])]
        wait_until(lambda: len(server.batches) == 1, what="the first command in hand")
        # when three commands come in behind it, one of them a business error
        callers.append(start("business", [{"a": 1, "b": 2}, {"a": 1, "b": 1, "fail": "business"}, {"a": 3, "b": 4}]))
        wait_until(lambda: server.waiting() == 3, what="three commands waiting")
        server.release()
        # and four more behind those, one of them crashing the handler
        wait_until(lambda: len(server.batches) == 2, what="the second batch in hand")
        callers.append(
            start(
                "crash",
                [
                    {"a": 5, "b": 5},
                    {"a": 1, "b": 1, "fail": "crash"},
                    {"a": 1, "b": 1, "fail": "business"},
                    {"a": 6, "b": 6},
                ],
            )
        )
        wait_until(lambda: server.waiting() == 4, what="four commands waiting")
        server.release(2)
        for caller in callers:
            caller.join(timeout=30)
    finally:
        server.release(10)
        running.stop()
    # then each batch was taken whole, and every command got its own answer, as if alone
    assert [len(batch) for batch in server.batches] == [1, 3, 4]
    # and only the crash sent its batch back to one by one; a business error is an answer
    assert [r.batch for r in caplog.records if "one message at a time" in r.getMessage()] == [4]
    codes = {name: [a.code if isinstance(a, RemoteError) else a for a in got] for name, got in answers.items()}
    assert codes == {
        "first": [0],
        "business": [3, "does_not_add_up", 7],
        "crash": [10, "internal_error", "does_not_add_up", 12],
    }


def test_rpc_without_a_server_times_out(bus):
    client = RpcClient()
    try:
        with pytest.raises(RpcTimeout):
            client.call(TEST_ADD, {"a": 1, "b": 2}, timeout=0.5)
    finally:
        client.close()
