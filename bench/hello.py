"""A hello-world ASGI endpoint under the same uvicorn as the node (httptools, one worker): the
machine's own ceiling for an HTTP request answered by Python, measured in each run
(bench/harness.machine_limits)."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route


async def hello(request: object) -> PlainTextResponse:
    return PlainTextResponse("hello")


app = Starlette(routes=[Route("/", hello, methods=["GET", "POST"])])
