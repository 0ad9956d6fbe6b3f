"""Request limits applied before any route runs: body size, and safe JSON parsing.

Bodies over the limit are refused with 413 from their declared length, or as soon as a chunked body
passes it, without buffering the rest. JSON is parsed with orjson, which refuses nesting deeper than
1,024 levels: importing web3 raises Python's recursion limit to 100,000 (py_ecc does), and the
standard library's parser then overflows the C stack on a deeply nested body instead of failing.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` with a 413."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = orjson.dumps(
            error_body("payload_too_large", f"request body is over {self.max_bytes} bytes", {"limit": self.max_bytes})
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


class OrjsonRequest(Request):
    """A request whose JSON body is parsed by orjson (bounded nesting, faster)."""

    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = orjson.loads(await self.body())
        return self._json


async def json_body(request: Request) -> Any:
    """The request's JSON body for routes that check it by hand: bad JSON is a 422 like anywhere else."""
    try:
        return await request.json()
    except orjson.JSONDecodeError as err:
        raise RequestValidationError(
            [{"loc": ("body",), "msg": f"JSON decode error: {err}", "type": "json_invalid"}]
        ) from err


class LedgerRoute(APIRoute):
    """Routes that parse JSON with :class:`OrjsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            return await handler(OrjsonRequest(request.scope, request.receive))

        return route_handler
