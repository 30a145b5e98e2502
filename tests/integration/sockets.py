"""WebSocket clients on the real application, for the integration tests of the live sockets."""

from __future__ import annotations

from channels.testing import WebsocketCommunicator

from passline.asgi import application


def ws(path: str, token: str | None = None, cookie: bytes | None = None) -> WebsocketCommunicator:
    """A WebSocket client from an allowed origin, with a bearer token or a session cookie."""
    headers = [(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


async def refusal(ws: WebsocketCommunicator) -> int:
    """The close code a refused socket gets: its very first frame is the close, nothing before it."""
    connected, _ = await ws.connect()
    assert connected, "refusals are accepted, then closed, so that the close code reaches the client"
    output = await ws.receive_output(timeout=5)
    assert output["type"] == "websocket.close", output
    # As a server does after the application closed: tell it the socket is gone, so the
    # consumer ends in this event loop rather than being left behind with the channel layer.
    await ws.disconnect()
    return output["code"]
