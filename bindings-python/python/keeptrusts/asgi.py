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

A JSON answer from the app then goes through the output phase (redacted or blocked), and the
request is closed with ``store.complete``: its reservation is settled with the answer's ``usage``
(the reserved estimate when the answer reports none; released, so nothing is charged, when the
app fails or answers with an error) and its audit event written. Streamed (``text/event-stream``)
answers pass through unchanged, their final ``usage`` event read for the settlement; redact them
in the app with ``keeptrusts.StreamRedactor``.
Evaluation runs in a worker thread, so the event loop keeps serving other requests.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, MutableMapping, Optional

from keeptrusts import Engine, MemoryStore, Store

if TYPE_CHECKING:
    from keeptrusts import Usage

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
PrincipalFn = Callable[[Scope], Optional[dict]]

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "insufficient_quota",
                403: "permission_error", 409: "policy_error", 413: "invalid_request_error"}


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


def _error(status: int, code: str, message: str, request_id: str) -> dict:
    return {"error": {"type": _ERROR_TYPES.get(status, "api_error"), "code": code,
                      "message": message, "request_id": request_id}}


def _usage(value: Any) -> Optional["Usage"]:
    if not isinstance(value, dict):
        return None
    return {"prompt_tokens": int(value.get("prompt_tokens") or 0),
            "completion_tokens": int(value.get("completion_tokens") or 0)}


def _sse_usage(line: bytes) -> Optional["Usage"]:
    """The `usage` of one SSE `data:` line, if it carries one."""
    line = line.strip()
    if not line.startswith(b"data:") or b'"usage"' not in line:
        return None
    try:
        event = json.loads(line[5:])
    except ValueError:
        return None
    return _usage(event.get("usage")) if isinstance(event, dict) else None


def _estimated_usage(decision: dict) -> Optional["Usage"]:
    """No usage reported: charge what was reserved (the estimate's tokens)."""
    estimate = decision.get("estimate")
    if not estimate:
        return None
    return {"prompt_tokens": estimate["input_tokens"], "completion_tokens": estimate["output_tokens"]}


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
        rid = headers.get("x-request-id") or f"req_{uuid.uuid4().hex}"
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _send_json(send, 413, _error(413, "request_too_large",
                                                   f"the body is larger than {self.max_body} bytes", rid), rid)
                return
            if not message.get("more_body", False):
                break
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("expected a JSON object")
        except (ValueError, RecursionError) as e:  # malformed, not UTF-8, or nested too deep
            await _send_json(send, 400, _error(400, "invalid_request",
                                               f"the body is not a chat completion request: {e}", rid), rid)
            return
        loop = asyncio.get_running_loop()
        try:
            principal = await loop.run_in_executor(None, self._principal, scope, headers)
        except Exception as e:  # the key store failed: fail closed
            code = getattr(e, "code", "store_unavailable")
            await _send_json(send, 503, _error(503, code, "the key store is unavailable", rid), rid)
            return
        if principal is None:
            await _send_json(send, 401, _error(401, "unauthenticated",
                                               "send an API key: Authorization: Bearer kt_…", rid), rid)
            return
        context = {"request_id": rid, "now_ms": int(time.time() * 1000)}
        for header, field in (("x-keeptrusts-escalation-id", "escalation_id"),
                              ("x-keeptrusts-ticket-id", "ticket_id")):
            if headers.get(header):
                context[field] = headers[header]
        try:
            decision = await loop.run_in_executor(
                None, lambda: self.engine.evaluate(principal, request, self.store, context, self.budget))
        except Exception as e:  # a request the engine cannot evaluate at all
            code = getattr(e, "code", "invalid_request")
            status = 503 if code.startswith("store_") else 400
            await _send_json(send, status, _error(status, code, str(e), rid), rid)
            return
        scope.setdefault("state", {})["keeptrusts"] = decision
        model = request.get("model")
        if decision["verdict"] not in ("allow", "redact"):
            await loop.run_in_executor(None, lambda: self.store.complete(principal, decision, rid, model))
            error = decision.get("error") or {}
            await _send_json(send, decision["status"], {"error": error}, rid)
            return
        forwarded = json.dumps(decision.get("request") or request).encode()
        await self._forward(scope, send, principal, decision, rid, model, forwarded)

    def _principal(self, scope: Scope, headers: dict[str, str]) -> Optional[dict]:
        if self.principal is not None:
            return self.principal(scope)
        auth = headers.get("authorization", "")
        secret = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
        return self.store.authenticate(secret) if secret else None

    async def _forward(self, scope: Scope, send: Send, principal: dict, decision: dict, rid: str,
                       model: Optional[str], body: bytes) -> None:
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
        start: Optional[Message] = None
        chunks: list[bytes] = []
        streaming = False
        stream_usage: list[Optional["Usage"]] = [None]
        pending = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start, streaming
            if message["type"] == "http.response.start":
                start = message
                ctype = _headers(message).get("content-type", "")
                streaming = not ctype.startswith("application/json")
                if streaming:
                    await send(message)
            elif message["type"] == "http.response.body":
                if streaming:
                    pending.extend(message.get("body", b""))
                    *lines, rest = bytes(pending).split(b"\n")
                    pending[:] = rest
                    for line in lines:
                        found = _sse_usage(line)
                        if found is not None:
                            stream_usage[0] = found
                    await send(message)
                else:
                    chunks.append(message.get("body", b""))

        loop = asyncio.get_running_loop()

        def close(usage: Optional["Usage"]) -> None:
            if usage is not None:
                self.store.complete(principal, decision, rid, model, model, usage)
            else:
                self.store.complete(principal, decision, rid, model)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            await loop.run_in_executor(None, close, None)
            raise
        if start is None:
            await loop.run_in_executor(None, close, None)
            return
        if streaming:
            found = _sse_usage(bytes(pending))
            usage = found or stream_usage[0]
            if usage is None and start["status"] == 200:
                usage = _estimated_usage(decision)
            await loop.run_in_executor(None, close, usage if start["status"] == 200 else None)
            return
        raw = b"".join(chunks)
        status = start["status"]
        usage = None
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = None
        if status == 200 and isinstance(answer, dict) and "choices" in answer:
            usage = _usage(answer.get("usage")) or _estimated_usage(decision)
            output = await loop.run_in_executor(
                None, lambda: self.engine.evaluate_output(principal, answer, {"request_id": rid}))
            if output["verdict"] in ("allow", "redact"):
                raw = json.dumps(output.get("response") or answer).encode()
            else:
                status, raw = output["status"], json.dumps({"error": output.get("error") or {}}).encode()
        await loop.run_in_executor(None, close, usage)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})
