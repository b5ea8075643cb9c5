"""The indexed router answers every path with the route Starlette's own Router would pick.

The node's real route table is checked path by path against a plain Router; a small app shows
the paths no route matches (405, the trailing-slash redirect, 404) behave as before."""

from __future__ import annotations

import re

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Match, Mount, Route, Router

from node.app import create_app
from node.config import load_settings
from node.routing import IndexedRouter


def _first_full_match(routes, path: str, method: str = "GET"):
    scope = {"type": "http", "path": path, "root_path": "", "method": method,
             "headers": [], "query_string": b""}
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def _node_routes(tmp_path):
    settings = load_settings({
        "NODE_BASE_URL": "http://127.0.0.1:8999", "NODE_DATA_DIR": str(tmp_path),
        "NODE_DATABASE_URL": f"sqlite:///{tmp_path}/node.db", "NODE_SECRET_KEY": "x"})
    app = create_app(settings)
    assert isinstance(app.router, IndexedRouter)
    return app.router


def _sample_paths(routes) -> list[str]:
    """Each route's own path with its parameters filled in, a few near misses of each, and
    paths no route serves."""
    paths = ["/", "/nothing", "/posts/", "/static", "/groups", "//posts", "/posts//x", ""]
    for route in routes:
        path = getattr(route, "path", "")
        for value in ("x", "12", "new", "mine", "a.b"):
            filled = re.sub(r"\{[^}]+\}", value, path)
            paths += [filled, filled + "/", filled + "/extra", filled.rstrip("/") + ".json"]
        if isinstance(route, Mount):
            paths += [path + "/css/site.css", path + "/"]
    return paths


def test_every_path_meets_the_route_starlette_would_pick(tmp_path):
    router = _node_routes(tmp_path)
    plain = list(router.routes)
    for path in _sample_paths(plain):
        for method in ("GET", "POST", "DELETE"):
            expected = _first_full_match(plain, path, method)
            got = _first_full_match(router._candidates(path), path, method)
            assert got is expected, (path, method, expected, got)


def test_a_route_added_later_is_found(tmp_path):
    router = _node_routes(tmp_path)
    router._candidates("/posts/1")  # the index is built
    router.add_route("/late/{x}", lambda request: PlainTextResponse("late"))
    assert _first_full_match(router._candidates("/late/1"), "/late/1").path == "/late/{x}"


def _small_app() -> Starlette:
    async def show(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"{request.url.path} {dict(request.path_params)}")

    routes = [Route("/posts", show), Route("/posts/{id}", show, methods=["GET"]),
              Route("/posts/{id}/edit", show, methods=["POST"]), Route("/{lang}/about", show),
              Route("/folder/", show), Mount("/files", routes=[Route("/{name}", show)])]
    app = Starlette()
    app.router = IndexedRouter(routes)
    return app


def _client(app: Starlette) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


async def test_answers_as_starlette_does_when_nothing_matches_exactly():
    plain_app = _small_app()
    plain_app.router = Router(list(plain_app.router.routes))
    indexed, plain = _client(_small_app()), _client(plain_app)
    for method, path in [("GET", "/posts/7"), ("GET", "/posts"), ("GET", "/fr/about"),
                         ("GET", "/files/a.txt"), ("GET", "/posts/7/edit"),  # 405
                         ("DELETE", "/posts/7"), ("GET", "/posts/"),  # redirect to /posts
                         ("GET", "/folder"), ("GET", "/nowhere"), ("GET", "/posts/7/x")]:
        a = await indexed.request(method, path, follow_redirects=False)
        b = await plain.request(method, path, follow_redirects=False)
        assert (a.status_code, a.text, a.headers.get("location")) == \
               (b.status_code, b.text, b.headers.get("location")), (method, path)
    assert (await indexed.get("/fr/about")).text == "/fr/about {'lang': 'fr'}"
    assert (await indexed.get("/posts/7/edit")).status_code == 405
