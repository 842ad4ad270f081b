"""An OpenAI-style chat endpoint governed by keeptrusts, as a Starlette app (FastAPI is the same:
``app.add_middleware(KeeptrustsMiddleware, engine=..., store=...)``).

Run it with ``uvicorn examples.asgi_app:app`` from ``bindings-python/``; create a team, a member,
a key and an allocation in the same store with the ``kt`` CLI (``--store sqlite:keeptrusts.db``, or
set ``KEEPTRUSTS_STORE``), then call ``POST /v1/chat/completions`` with
``Authorization: Bearer kt_…``. The endpoint here answers by echoing the prompt it receives, so you
can see what governance let through; a real app would call its model provider instead.
"""

from __future__ import annotations

import os
import pathlib
from typing import Optional

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import keeptrusts
from keeptrusts.asgi import KeeptrustsMiddleware

PACK = pathlib.Path(__file__).resolve().parents[2] / "examples" / "packs" / "gateway-quickstart.yaml"


async def chat(request: Request) -> JSONResponse:
    body = await request.json()
    prompt = " ".join(str(m.get("content", "")) for m in body["messages"] if m.get("role") == "user")
    decision = request.state.keeptrusts  # what governance decided, for the app's own use
    return JSONResponse({
        "id": "chatcmpl-example", "object": "chat.completion", "model": body.get("model"),
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": f"You said: {prompt}"}}],
        "usage": {"prompt_tokens": 12, "completion_tokens": 8, "total_tokens": 20},
    }, headers={"x-keeptrusts-verdict": decision["verdict"]})


def create_app(store: Optional[keeptrusts.Store] = None, budget: bool = True) -> Starlette:
    """The governed app. Teams, keys and wallets live in ``store`` (default: an in-memory one)."""
    engine = keeptrusts.Engine.from_file(PACK)
    app = Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])
    app.add_middleware(KeeptrustsMiddleware, engine=engine, store=store or keeptrusts.MemoryStore(), budget=budget)
    return app


# The same store the `kt` CLI manages: `kt team create Support --store sqlite:keeptrusts.db`, …
app = create_app(keeptrusts.Store.open(os.environ.get("KEEPTRUSTS_STORE", "sqlite:keeptrusts.db")))
