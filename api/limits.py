"""Request limits applied before any route runs: body size per route, and safe JSON parsing.

Bodies over their route's limit are refused with 413: from their declared length, or, for a chunked
body, as soon as it passes the limit (the middleware reads a chunked body itself, so no route ever
sees a part of one). JSON is parsed with orjson, which refuses nesting deeper than 1,024 levels:
importing web3 raises Python's recursion limit to 100,000 (py_ecc does), and the standard library's
parser then overflows the C stack on a deeply nested body instead of failing.

Routes whose body carries a record document (:class:`DocumentRoute`) parse it with the one strict
parser instead (:func:`ledger.records.strict_json.parse_json`, as the auditor does), so a document's
digest is that of the text sent: duplicate keys and numbers a double would round are refused, and
so are bodies over the configured count of JSON values. Large bodies are parsed in the
:class:`~api.cpu_pool.CpuPool`, off the event loop.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from email.message import Message as EmailMessage
from typing import Any, ClassVar

import orjson
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.cpu_pool import is_large
from api.errors import error_body
from ledger.exceptions import (
    InvalidDocumentError,
    InvalidJsonError,
    LedgerError,
    ServerBusyError,
    TooManyElementsError,
)
from ledger.records.strict_json import parse_json

BULK_REGISTRATION_PATH = "/v1/records/bulk"
"""The one route with a body limit of its own (``max_bulk_body_bytes``); every other route has ``max_body_bytes``."""


class BodySizeLimit:
    """ASGI middleware refusing request bodies over their route's limit with a 413.

    Args:
        app: The application.
        max_bytes: The limit of every path not in ``by_path``.
        by_path: Limits of particular paths (bulk registration).
    """

    def __init__(self, app: ASGIApp, max_bytes: int, by_path: Mapping[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.by_path = dict(by_path or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.by_path.get(scope["path"], self.max_bytes)
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None:  # the server delivers exactly the declared length
            if not declared.isdigit() or int(declared) > limit:
                await _refuse(send, limit)
                return
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replaying(message, receive), send)
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _refuse(send, limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        whole: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replaying(whole, receive), send)


def _replaying(first: Message, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``first``, then whatever ``receive`` gives (a disconnect)."""
    pending = [first]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


async def _refuse(send: Send, limit: int) -> None:
    body = orjson.dumps(error_body("payload_too_large", f"request body is over {limit} bytes", {"limit": limit}))
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


def json_syntax_error(message: str) -> RequestValidationError:
    """Bad JSON is a 422 ``invalid_request``, whichever parser found it."""
    return RequestValidationError([{"loc": ("body",), "msg": f"JSON decode error: {message}", "type": "json_invalid"}])


async def json_body(request: Request) -> Any:
    """The request's JSON body for routes that check it by hand: bad JSON is a 422 like anywhere else."""
    try:
        return await request.json()
    except orjson.JSONDecodeError as err:
        raise json_syntax_error(str(err)) from err


class LedgerRoute(APIRoute):
    """Routes that parse JSON with :class:`OrjsonRequest`."""

    body_errors: ClassVar[tuple[type[LedgerError], ...]] = ()
    """What :meth:`prepare` raises about a body, beside bad JSON (422): the OpenAPI document lists them."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route_handler(request: Request) -> Response:
            wrapped = OrjsonRequest(request.scope, request.receive)
            await self.prepare(wrapped)
            return await handler(wrapped)

        return route_handler

    async def prepare(self, request: OrjsonRequest) -> None:
        """Work on the request before FastAPI reads its body: nothing, here."""


def _is_json(request: Request) -> bool:
    """Whether FastAPI reads this body as JSON (no content type, ``*/json`` or ``*/*+json``)."""
    content_type = request.headers.get("content-type")
    if not content_type:
        return True
    message = EmailMessage()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return subtype == "json" or subtype.endswith("+json")


class DocumentRoute(LedgerRoute):
    """Routes whose declared body carries a record document: the body is parsed by the strict
    parser (in the CPU pool when it is large) before FastAPI validates it. Routes that read their
    body by hand (bulk registration) are left to do so."""

    body_errors = (InvalidDocumentError, TooManyElementsError, ServerBusyError)

    async def prepare(self, request: OrjsonRequest) -> None:
        if self.body_field is None:
            return
        body = await request.body()
        if not body or not _is_json(request):
            return
        service = request.app.state.service
        try:
            request._json = await service.cpu.run(
                is_large(body), parse_json, body, max_elements=service.settings.max_json_elements, field="body"
            )  # what FastAPI's body parsing then reads
        except InvalidJsonError as err:
            raise json_syntax_error(err.message) from err
