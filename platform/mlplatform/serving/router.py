"""One address for the APIs of several use cases: `/<namespace>/...` goes to that use case's server.

`mlplatform serve` with several use cases enabled starts one server per use case (a process serves
one use case: `mlplatform.usecases`), each on a Unix socket of its own, and this router on the
address asked for. A use case with the empty namespace keeps the root (`/predict`); the others answer
under their namespace (`/<namespace>/predict`, their docs at `/<namespace>/docs`). `GET /use_cases`
lists them with each one's health. Authentication stays with each server: the router passes the
request's headers on as they came.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response

# Hop-by-hop headers, which belong to one connection and are never passed on.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-authorization",
        "proxy-authenticate", "host", "content-length"}


def create_router(sockets: Mapping[str, Path], timeout_s: float = 60.0) -> FastAPI:
    """The router over each namespace's server socket (`""` for the root's)."""
    import httpx

    clients: dict[str, httpx.AsyncClient] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        for namespace, socket in sockets.items():
            clients[namespace] = httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(uds=str(socket)),
                                                   base_url="http://use-case", timeout=timeout_s)
        yield
        for client in clients.values():
            await client.aclose()

    app = FastAPI(title="mlplatform: " + ", ".join(n or "(root)" for n in sockets), lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/use_cases")
    async def use_cases() -> dict:
        found = {}
        for namespace, client in clients.items():
            try:
                health = (await client.get("/health")).json()
            except (httpx.HTTPError, ValueError) as err:
                health = {"status": "unreachable", "error": f"{type(err).__name__}: {err}"}
            found[namespace or "/"] = {"prefix": f"/{namespace}" if namespace else "/", "health": health}
        return found

    @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"])
    async def forward(path: str, request: Request) -> Response:
        first, _, rest = path.partition("/")
        if first in clients and first:
            namespace, path = first, rest
        elif "" in clients:
            namespace = ""
        else:
            return _error(404, f"no use case at /{first}: the use cases are under "
                               f"{', '.join('/' + n for n in clients)} (GET /use_cases)")
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        try:
            answer = await clients[namespace].request(request.method, f"/{path}", params=request.query_params,
                                                      headers=headers, content=await request.body())
        except httpx.HTTPError as err:
            return _error(503, f"the server of /{namespace} does not answer ({type(err).__name__}): see the "
                               "output of `mlplatform serve`")
        return Response(content=answer.content, status_code=answer.status_code,
                        headers={k: v for k, v in answer.headers.items() if k.lower() not in _HOP})

    return app


def _error(status: int, detail: str) -> Response:
    import json

    return Response(status_code=status, media_type="application/json", content=json.dumps({"detail": detail}))
