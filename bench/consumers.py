"""The benchmark's own event and consumer: a sink whose handler does no work of its own, so
what is measured is the bus — outbox, relay, broker, runner, deduplication, ack."""

from bus.catalog import EventType, Exchange, Payload
from bus.handlers import EventHandler, Message, register


class Ping(Payload):
    seq: int
    padding: str = ""


BENCH_PING = EventType("bench.ping", Exchange.CUSTOMER, "bench.ping", Ping)


def sink(message: Message) -> None:
    """Nothing: the runner's transaction (recording the message id) is the whole effect."""


# The same sink twice: its handler on the connection's thread (``quick``), and handed to the
# handler thread as a consumer that may wait long is; the trickle compares their CPU.
bench_sink = register(EventHandler(queue="bench.sink", events=[BENCH_PING], handler=sink, prefetch=200, quick=True))
bench_sink_threaded = register(
    EventHandler(queue="bench.sink_threaded", events=[BENCH_PING], handler=sink, prefetch=200)
)
