"""ASGI middleware: governs an app's OpenAI-style chat completion endpoint with a keeptrusts pack.

Works with any ASGI 3 framework (FastAPI, Starlette, Quart, plain ASGI) on asyncio::

    from fastapi import FastAPI
    import keeptrusts
    from keeptrusts.asgi import KeeptrustsMiddleware

    app = FastAPI()
    engine = keeptrusts.Engine.from_file("pack.yaml")
    store = keeptrusts.SqliteStore("keeptrusts.db")
    app.add_middleware(KeeptrustsMiddleware, engine=engine, store=store)

For each ``POST`` to a governed path (default ``/v1/chat/completions``) the middleware reads the
JSON body, finds the caller (``Authorization: Bearer kt_…`` through ``store.authenticate``, or your
``principal`` callable), and evaluates the request:

- no principal (no key, an unknown key, or your callable returned None) is answered with 401;
- a denial (401, 402, 403, 409, …) is answered with the error envelope, and the app never sees it;
- a redaction replaces the body the app receives;
- the decision is put in ``scope["state"]["keeptrusts"]`` for the app to read.

The request runs through the core's lifecycle (``Engine.begin``): the app receives the governed
body, with an output limit no larger than the reservation covers (injected when the client sent
none). A JSON answer goes through the output phase (redacted or blocked) and is settled on its
``usage`` (its whole reservation when it reports none; an answer above the limit is charged and
flagged ``overrun``). A streamed (``text/event-stream``) answer is redacted chunk by chunk by the
core's output filter and settled on its usage chunk. An app that fails or answers an error is
not charged; a client that leaves while the app works is charged the reservation. Every request
gets exactly one event. Evaluation runs in a worker thread, so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any, Awaitable, Callable, Iterable, MutableMapping, Optional

from keeptrusts import Engine, Exchange, MemoryStore, Store, error_envelope

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PrincipalFn = Callable[[Scope], Optional[dict]]


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _send_json(send: Send, status: int, body: Any, request_id: str) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
               (b"x-request-id", request_id.encode("latin-1", "replace"))]
    if 400 <= status < 500:
        headers.append((b"x-should-retry", b"false"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class KeeptrustsMiddleware:
    """Governs chat completion requests of an ASGI app; see the module documentation.

    ``engine``: the compiled pack. ``store``: where escalations, wallets, tickets and events are
    kept (default: a fresh ``MemoryStore``). ``principal``: a callable taking the ASGI scope and
    returning the principal dict (or None: answered with 401); by default the bearer key is
    looked up in ``store``. ``paths``: the governed paths. ``budget``: reserve each request's
    estimated cost on its wallets (needs a pack whose models have prices).
    """

    def __init__(
        self,
        app: ASGIApp,
        engine: Engine,
        store: Optional[Store] = None,
        principal: Optional[PrincipalFn] = None,
        paths: Iterable[str] = ("/v1/chat/completions",),
        budget: bool = False,
        max_body: int = 4 * 1024 * 1024,
    ) -> None:
        if store is None:
            store = MemoryStore()
        self.app = app
        self.engine = engine
        self.store = store
        self.principal = principal
        self.paths = frozenset(paths)
        self.budget = budget
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "POST" or scope.get("path") not in self.paths:
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        # unique even when the client names its own id: no two calls share a reservation
        given = headers.get("x-request-id")
        rid = f"{given}.{uuid.uuid4().hex[:16]}" if given else f"req_{uuid.uuid4().hex}"
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_json(send, 413, error_envelope(413, "request_too_large",
                                                           f"the body is larger than {self.max_body} bytes", rid), rid)
                return
            if not message.get("more_body", False):
                break
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
        except (ValueError, RecursionError) as e:  # malformed, not UTF-8, or nested too deep
            await _send_json(send, 400, error_envelope(400, "invalid_request",
                                                       f"the body is not a chat completion request: {e}", rid), rid)
            return
        loop = asyncio.get_running_loop()
        try:
            principal = await loop.run_in_executor(None, self._principal, scope, headers)
        except Exception as e:  # the key store failed: fail closed
            code = getattr(e, "code", "store_unavailable")
            await _send_json(send, 503, error_envelope(503, code, "the key store is unavailable", rid), rid)
            return
        if principal is None:
            await _send_json(send, 401, error_envelope(401, "unauthenticated",
                                                       "send an API key: Authorization: Bearer kt_…", rid), rid)
            return
        context = {"request_id": rid, "now_ms": int(time.time() * 1000)}
        for header, field in (("x-keeptrusts-escalation-id", "escalation_id"),
                              ("x-keeptrusts-ticket-id", "ticket_id")):
            if headers.get(header):
                context[field] = headers[header]
        try:
            exchange = await loop.run_in_executor(
                None, lambda: self.engine.begin(principal, request, self.store, context, self.budget))
        except Exception as e:  # a request the engine cannot evaluate at all
            code = getattr(e, "code", "invalid_request")
            status = 503 if code.startswith("store_") else 400
            await _send_json(send, status, error_envelope(status, code, str(e), rid), rid)
            return
        refusal = exchange.refusal
        if refusal is not None:
            await _send_json(send, refusal["status"], refusal["body"], rid)
            return
        scope.setdefault("state", {})["keeptrusts"] = exchange.decision
        forwarded = exchange.next_call()
        await self._forward(scope, send, exchange, json.dumps(forwarded).encode())

    def _principal(self, scope: Scope, headers: dict[str, str]) -> Optional[dict]:
        if self.principal is not None:
            return self.principal(scope)
        auth = headers.get("authorization", "")
        secret = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return self.store.authenticate(secret) if secret else None

    async def _forward(self, scope: Scope, send: Send, exchange: Exchange, body: bytes) -> None:
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
        scope["headers"].append((b"content-length", str(len(body)).encode()))
        loop = asyncio.get_running_loop()
        start: Optional[Message] = None
        chunks: list[bytes] = []
        streaming = False
        done = False
        pending = bytearray()

        async def relay(line: bytes) -> None:
            # one SSE line of the app's stream: chunks through the core's output filter
            data = line.strip()
            if not data.startswith(b"data:"):
                await send({"type": "http.response.body", "body": line + b"\n", "more_body": True})
                return
            payload = data[5:].strip()
            try:
                chunk = json.loads(payload) if payload != b"[DONE]" else None
            except ValueError:
                chunk = None
            if not isinstance(chunk, dict):
                return  # [DONE] is sent after the held-back text; unreadable events are dropped
            for out in exchange.push_chunk(chunk):
                await send({"type": "http.response.body", "body": b"data: " + json.dumps(out).encode() + b"\n\n",
                            "more_body": True})

        async def capture(message: Message) -> None:
            nonlocal start, streaming, done
            if message["type"] == "http.response.start":
                start = message
                ctype = _headers(message).get("content-type", "")
                streaming = ctype.startswith("text/event-stream") and message.get("status", 200) == 200
                if streaming:
                    headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"content-length"]
                    await send({"type": "http.response.start", "status": 200, "headers": headers})
            elif message["type"] == "http.response.body":
                if not streaming:
                    chunks.append(message.get("body", b""))
                    return
                pending.extend(message.get("body", b""))
                *lines, rest = bytes(pending).split(b"\n")
                pending[:] = rest
                for line in lines:
                    if line.strip():
                        await relay(line)
                if not message.get("more_body", False):
                    if pending.strip():
                        await relay(bytes(pending))
                    done = True
                    end = await loop.run_in_executor(None, exchange.finish_stream)
                    for out in end["chunks"]:
                        await send({"type": "http.response.body", "body": b"data: " + json.dumps(out).encode() + b"\n\n",
                                    "more_body": True})
                    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

        try:
            await self.app(scope, receive, capture)
        except asyncio.CancelledError:
            # the client went away while the app worked: it may have been billed
            await loop.run_in_executor(None, exchange.abandon)
            raise
        except BaseException:
            if streaming and not done:
                await loop.run_in_executor(None, lambda: exchange.finish_stream("broken", "the app failed"))
            elif not done:
                exchange.failed()
                await loop.run_in_executor(None, lambda: exchange.exhausted("the app failed"))
            raise
        if streaming:
            if not done:
                await loop.run_in_executor(None, exchange.finish_stream)
            return
        if start is None:
            exchange.failed()
            await loop.run_in_executor(None, lambda: exchange.exhausted("the app sent no answer"))
            return
        raw = b"".join(chunks)
        status = start["status"]
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if status == 200 and isinstance(answer, dict) and "choices" in answer:
            result = await loop.run_in_executor(None, lambda: exchange.answer(answer))
            status, raw = result["status"], json.dumps(result["body"]).encode()
            # logprobs cannot be redacted: the core dropped them, and the client is told
            if "logprobs" in result.get("dropped", []):
                headers.append((b"x-keeptrusts-logprobs-dropped", b"true"))
        elif status == 200:
            # an answer that is not a chat completion: the app may have been billed for it
            await loop.run_in_executor(None, lambda: exchange.broken("the app's answer is not a chat completion"))
        else:
            # the app answered an error: nothing was served, nothing is charged
            exchange.failed()
            await loop.run_in_executor(None, lambda: exchange.exhausted(f"the app answered {status}"))
        headers.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})
