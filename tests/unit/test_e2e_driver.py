"""The pure parts of the end-to-end driver: percentiles, the schedule and its lateness, the
search's stop rule, joining the sockets' frames to the POST answers, and the HTTP client."""

import asyncio
import json

import pytest

from bench.e2e_stats import (
    Order,
    achieved_rate,
    distribution_ms,
    is_late,
    next_search_rate,
    parse_head,
    percentile,
    record_frame,
    schedule,
    search_rate_bound,
    stop_reason,
    summarize,
    time_budget,
)
from bench.http_pool import Pool

# Percentiles ---------------------------------------------------------------------------------


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1 .. 100
    assert percentile(values, 50) == 50
    assert percentile(values, 90) == 90
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100


def test_a_percentile_never_interpolates_and_rounds_the_rank_up():
    # 10 values: the p99 rank is ceil(9.9) = 10, the p50 rank ceil(5) = 5
    values = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 1000.0]
    assert percentile(values, 99) == 1000.0
    assert percentile(values, 50) == 5.0
    assert percentile([7.0], 1) == 7.0


def test_no_values_have_no_percentiles():
    assert percentile([], 50) is None
    assert distribution_ms([]) == {"p50": None, "p90": None, "p99": None, "max": None}


def test_the_distribution_is_in_milliseconds_whatever_the_order_of_the_values():
    assert distribution_ms([0.030, 0.010, 0.020]) == {"p50": 20.0, "p90": 30.0, "p99": 30.0, "max": 30.0}


# Schedule and lateness -----------------------------------------------------------------------


def test_a_rate_sends_its_warm_up_then_its_measured_orders():
    assert schedule(100, 3, 30) == (300, 3000)
    assert schedule(150, 2, 15) == (300, 2250)
    assert schedule(100, 0, 10) == (0, 1000)


def test_a_send_is_late_only_past_the_threshold_and_one_that_never_started_is_late():
    assert not is_late(10.0, 10.004, 0.010)
    assert is_late(10.0, 10.011, 0.010)
    assert not is_late(10.0, 9.999, 0.010)  # a little early is on time
    assert is_late(10.0, None, 0.010)


def test_the_achieved_rate_of_sends_on_schedule_is_the_asked_rate():
    interval = 1 / 100
    starts = [5.0 + i * interval for i in range(1000)]
    assert achieved_rate(5.0, starts, interval, 10.0) == pytest.approx(100.0)


def test_sends_that_fall_behind_the_schedule_lower_the_achieved_rate():
    interval = 1 / 100
    starts = [5.0 + i * interval * 2 for i in range(1000)]  # they can only go half as fast
    assert achieved_rate(5.0, starts, interval, 10.0) == pytest.approx(1000 / 19.99, rel=1e-3)


def test_sends_that_never_started_lower_the_achieved_rate():
    interval = 1 / 100
    starts = [5.0 + i * interval for i in range(900)]
    assert achieved_rate(5.0, starts, interval, 10.0) == pytest.approx(90.0)
    assert achieved_rate(5.0, [], interval, 10.0) == 0.0


# The search's stop rule ----------------------------------------------------------------------


def result(**changes):
    base = {
        "rate": 200.0,
        "sent": 3000,
        "paid": 3000,
        "achieved_rate": 199.5,
        "e2e_ms": {"p50": 40.0, "p90": 80.0, "p99": 300.0, "max": 900.0},
    }
    base.update(changes)
    return base


def test_a_rate_with_everything_paid_in_time_and_on_schedule_is_sustained():
    assert stop_reason(result(), 1000) is None


def test_the_search_stops_when_the_p99_exceeds_the_limit():
    assert "p99" in stop_reason(result(e2e_ms={"p50": 40.0, "p90": 80.0, "p99": 1000.5, "max": 2000.0}), 1000)
    assert stop_reason(result(e2e_ms={"p50": 40.0, "p90": 80.0, "p99": 1000.0, "max": 2000.0}), 1000) is None


def test_the_search_stops_when_an_order_is_not_paid():
    assert "paid 2999 < sent 3000" == stop_reason(result(paid=2999), 1000)


def test_the_search_stops_when_the_driver_cannot_keep_to_the_schedule():
    assert "achieved" in stop_reason(result(achieved_rate=189.9), 1000)
    assert stop_reason(result(achieved_rate=190.0), 1000) is None


def test_the_search_stops_when_nothing_was_measured():
    assert (
        stop_reason(result(sent=0, paid=0, e2e_ms={"p50": None, "p90": None, "p99": None, "max": None}), 1000)
        is not None
    )


def search(limit, start=5, step=5, maximum=1000):
    """The rates the search measures against a stack that holds every rate up to ``limit``."""
    measured, sustained, missed = [], None, None
    while (rate := next_search_rate(start, step, maximum, sustained, missed)) is not None:
        measured.append(rate)
        if rate <= limit:
            sustained = rate
        else:
            missed = rate
        assert len(measured) < 50
    return measured, sustained


def test_the_search_doubles_the_rate_then_halves_the_gap_to_within_a_step():
    measured, found = search(limit=137)
    assert measured[:6] == [5, 10, 20, 40, 80, 160]
    assert found == 135  # within one step of the limit, on the step's grid
    assert len(measured) <= 11


def test_the_search_finds_a_limit_far_above_its_start_within_few_rates():
    # The linear search from 5 by 5 needed 60 rates to reach 300/s.
    measured, found = search(limit=300)
    assert found == 300
    assert len(measured) <= search_rate_bound(5, 5, 1000)
    assert len(measured) <= 13


def test_the_search_ends_at_its_maximum():
    measured, found = search(limit=5000, maximum=200)
    assert found == 200
    assert measured == [5, 10, 20, 40, 80, 160, 200]


def test_a_first_rate_that_misses_is_searched_below():
    measured, found = search(limit=30, start=100, step=10)
    assert measured[0] == 100
    assert found == 30
    measured, found = search(limit=2, start=5, step=5)
    assert (measured, found) == ([5], None)


def test_the_search_never_measures_a_rate_twice():
    for limit in (7, 33, 99, 101, 480, 999):
        measured, _ = search(limit=limit)
        assert len(measured) == len(set(measured))


def test_the_time_budget_covers_every_phase():
    plan = {
        "warmup_seconds": 3,
        "seconds": 30,
        "rates": [100, 200],
        "search": {"start": 100, "step": 50, "max": 200, "seconds": 15},
    }
    assert time_budget(plan) > 2 * 33 + 3 * 18 + 120


# Frames and joining --------------------------------------------------------------------------


def frame(order_id, status, version=2):
    return json.dumps(
        {
            "type": "order.update",
            "order_id": order_id,
            "status": status,
            "version": version,
            "at": "2026-03-02T12:00:00Z",
            "label": "x",
        }
    )


def test_only_the_first_paid_update_of_an_order_counts():
    paid, failed = {}, {}
    record_frame(frame(7, "pending_payment", 1), 1.0, paid, failed)
    record_frame(frame(7, "paid"), 2.0, paid, failed)
    record_frame(frame(7, "paid"), 3.0, paid, failed)  # a resent frame
    record_frame(frame(8, "payment_failed"), 2.5, paid, failed)
    assert paid == {7: 2.0} and failed == {8: 2.5}


def test_other_frames_are_ignored():
    paid, failed = {}, {}
    record_frame(json.dumps({"type": "notification", "id": 1, "order_id": 7, "message": "paid"}), 1.0, paid, failed)
    record_frame('{"type":"pong"}', 1.0, paid, failed)
    record_frame(b'{"type":"order.update","order_id":9,"status":"paid","version":2}', 4.0, paid, failed)
    assert paid == {9: 4.0} and failed == {}


def order(seq, due, t0, answered, status=201, order_id=None, measured=True, error=""):
    o = Order(seq, 0, due, measured)
    o.t0, o.answered, o.status, o.order_id, o.error = t0, answered, status, order_id, error
    return o


def test_a_paid_frame_that_came_before_the_answer_is_joined_to_its_order():
    orders = [order(0, 10.0, 10.001, 10.050, order_id=41)]
    # the paid update arrived before the POST's answer was read
    figures = summarize(
        rate=100, phase="steady", seconds=0.01, orders=orders, paid={41: 10.030}, failed={}, late_after=0.010
    )
    assert figures["paid"] == 1 and figures["missing"] == 0
    assert figures["e2e_ms"]["p50"] == pytest.approx(29.0)
    assert figures["post_ms"]["p50"] == pytest.approx(49.0)


def test_the_summary_counts_warm_up_out_and_sorts_what_went_wrong():
    orders = [
        order(0, 1.00, 1.000, 1.02, order_id=1, measured=False),  # warm-up: not counted
        order(1, 1.01, 1.010, 1.03, order_id=2),  # paid
        order(2, 1.02, 1.045, 1.06, order_id=3),  # paid, started 25 ms late
        order(3, 1.03, 1.030, 1.05, order_id=4),  # created, never paid
        order(4, 1.04, 1.040, 1.05, order_id=5),  # payment failed
        order(5, 1.05, 1.050, 1.06, status=422),  # refused
        order(6, 1.06, 1.060, None, status=None, error="timeout"),  # no answer
        order(7, 1.07, None, None, status=None, error="unfinished"),  # never written
    ]
    paid = {1: 1.05, 2: 1.08, 3: 1.095, 99: 1.0}
    figures = summarize(
        rate=100, phase="search", seconds=0.07, orders=orders, paid=paid, failed={5: 1.1}, late_after=0.010
    )
    assert figures["sent"] == 7
    assert figures["created"] == 4
    assert figures["paid"] == 2
    assert figures["missing"] == 1
    assert figures["payment_failed"] == 1
    assert figures["errors"] == {"422": 1, "timeout": 1, "unfinished": 1}
    assert figures["late_sends"] == 2  # 25 ms late, and the one never written
    assert figures["e2e_ms"]["p50"] == pytest.approx(50.0) and figures["e2e_ms"]["max"] == pytest.approx(70.0)
    assert figures["phase"] == "search" and figures["rate"] == 100


# The HTTP client ----------------------------------------------------------------------------


def test_a_response_head_gives_its_status_and_lower_cased_headers():
    status, headers = parse_head(
        b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        b"Content-Length: 12\r\nConnection: keep-alive\r\n\r\n"
    )
    assert status == 201 and headers["content-length"] == "12" and headers["connection"] == "keep-alive"
    with pytest.raises(ValueError):
        parse_head(b"garbage\r\n\r\n")


def test_the_client_keeps_connections_alive_and_retries_one_the_server_closed():
    answers = {"requests": 0, "connections": 0}

    async def serve(reader, writer):
        answers["connections"] += 1
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            await reader.readexactly(2)
            answers["requests"] += 1
            if answers["requests"] == 2:  # the server drops the connection instead of answering
                break
            if answers["requests"] == 3:
                writer.write(
                    b'HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{"id\r\n6\r\n": 12}\r\n0\r\n\r\n'
                )
            else:
                writer.write(b'HTTP/1.1 201 Created\r\nContent-Length: 9\r\n\r\n{"id": 7}')
            await writer.drain()
        writer.close()

    async def scenario():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Pool("127.0.0.1", port, 4)
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"
        conn = await pool.acquire()
        first = await conn.exchange(request)
        pool.release(conn, first[2])
        conn = await pool.acquire()  # the same connection again
        try:
            await conn.exchange(request)
            raise AssertionError("the dropped request should raise")
        except Exception as error:  # noqa: BLE001
            dropped = type(error).__name__
        pool.release(conn, False)
        conn = await pool.acquire()
        third = await conn.exchange(request)
        pool.release(conn, third[2])
        pool.close_all()
        server.close()
        await server.wait_closed()
        return first, dropped, third

    first, dropped, third = asyncio.run(scenario())
    assert first == (201, b'{"id": 7}', True)
    assert dropped == "Stale"  # a reused connection closed before any answer: safe to retry
    assert third == (201, b'{"id": 12}', True)
    assert answers["connections"] == 2


def test_a_full_pool_hands_the_next_free_connection_to_the_first_waiter():
    async def scenario():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Pool("127.0.0.1", port, 1)
        first = await pool.acquire()
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        assert not waiting.done()
        pool.release(first, True)
        handed = await asyncio.wait_for(waiting, 1)
        assert handed is first and pool.open == 1
        # a closed connection frees its slot for the next waiter, who opens a new one
        waiting = asyncio.ensure_future(pool.acquire())
        await asyncio.sleep(0.01)
        pool.release(handed, False)
        fresh = await asyncio.wait_for(waiting, 1)
        assert fresh is not handed and pool.open == 1
        pool.release(fresh, False)
        assert pool.open == 0
        server.close()
        await server.wait_closed()

    asyncio.run(scenario())


# The whole driver against a fake server ------------------------------------------------------


def test_a_run_against_a_fake_server_joins_frames_and_survives_a_dropped_socket():
    """A fake API answers each POST 201 and pushes the order's paid update on its customer's
    socket; customer "a"'s socket is dropped once: the driver reconnects, and the orders whose
    update went out while it was down count as missing, not as a hang."""
    from websockets.asyncio.server import serve

    from bench.e2e_driver import Driver

    sockets, keys = {}, set()
    state = {"next_id": 100, "dropped": False}

    async def ws_handler(ws):
        token = ws.request.headers["Authorization"].split()[1]
        sockets[token] = ws
        try:
            async for raw in ws:
                if json.loads(raw).get("type") == "ping":
                    await ws.send('{"type":"pong"}')
        finally:
            if sockets.get(token) is ws:
                del sockets[token]

    async def push_paid(token, order_id):
        await asyncio.sleep(0.005)
        ws = sockets.get(token)
        if token == "a" and order_id >= 130 and not state["dropped"]:
            state["dropped"] = True
            await ws.close(1011)
            return
        if ws is not None:
            await ws.send(frame(order_id, "pending_payment", 1))
            await ws.send(json.dumps({"type": "notification", "order_id": order_id, "message": "x"}))
            await ws.send(frame(order_id, "paid"))

    pushes: set[asyncio.Future[None]] = set()  # kept until done, so none is collected mid-flight

    async def http_handler(reader, writer):
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if line)
            await reader.readexactly(int(headers["Content-Length"]))
            assert headers["Content-Type"] == "application/json"
            key = headers["Idempotency-Key"]
            assert key not in keys
            keys.add(key)
            order_id, state["next_id"] = state["next_id"], state["next_id"] + 1
            body = json.dumps({"id": order_id, "status": "pending_payment"}).encode()
            pushes.add(task := asyncio.ensure_future(push_paid(headers["Authorization"].split()[1], order_id)))
            task.add_done_callback(pushes.discard)
            writer.write(
                b"HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        writer.close()

    async def scenario():
        http = await asyncio.start_server(http_handler, "127.0.0.1", 0)
        async with serve(ws_handler, "127.0.0.1", 0) as ws_server:
            plan = {
                "http": f"http://127.0.0.1:{http.sockets[0].getsockname()[1]}",
                "ws": f"ws://127.0.0.1:{ws_server.sockets[0].getsockname()[1]}",
                "customers": [{"token": "a", "id": 1}, {"token": "b", "id": 2}],
                "order": {"restaurant_id": 1, "items": [{"menu_item_id": 3, "quantity": 1}]},
                "warmup_seconds": 0.2,
                "seconds": 1,
                "rates": [50],
                "wait_seconds": 1,
                "pause_seconds": 0,
                "late_ms": 50,
            }
            driver = Driver(plan)
            try:
                summary = await asyncio.wait_for(driver.run(), 30)
            finally:
                await driver.close()
        http.close()
        return summary

    summary = asyncio.run(scenario())
    figures = summary["steady"][0]
    assert figures["sent"] == 50 and figures["created"] == 50 and figures["errors"] == {}
    assert figures["ws_drops"] == 1
    assert 1 <= figures["missing"] <= 10  # customer a's orders while its socket was down
    assert figures["paid"] == 50 - figures["missing"]
    assert figures["e2e_ms"]["p50"] >= 5 and figures["e2e_ms"]["max"] < 1000
    assert figures["achieved_rate"] > 45 and figures["connections"] >= 1
    assert summary["highest_rate_p99_under_limit"] is None and summary["search"] == []
