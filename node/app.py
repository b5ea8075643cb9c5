"""The starlette application: routes, sessions, and the node's life cycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from inbox.runner import start_runner
from node import backfill, errors, heap, mailqueue, matching
from node.accounts.sessions import ServerSessionMiddleware
from node.config import REPO_ROOT, Settings, load_settings
from node.context import Node
from node.i18n import LocaleMiddleware
from node.moderation.suspension import SuspensionMiddleware
from node.ratelimit import Limiter, RateLimitMiddleware
from node.routes import accounts, actors, objects, passwords, posts, tags, web, wellknown
from node.routes import desk as desk_routes
from node.routes import impact as impact_routes
from node.routes import moderation as moderation_routes
from node.routes import network as network_routes
from node.routes import notifications as notification_routes
from node.routes import organisations as organisation_routes
from node.routes import relays as relay_routes
from node.routing import IndexedRouter
from node.security_headers import SecurityHeadersMiddleware
from outbox.worker import DeliveryWorker

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    node = Node.create(settings)
    node.rate_limiter = Limiter(settings.rate_limits)  # type: ignore[attr-defined]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        from node.bootstrap import bootstrap

        await node.start()
        await bootstrap(node)
        # Activities a crash or a stop left unfinished are run again (inbox/runner.py).
        inbox_runner = start_runner(node)
        # Outboxes of newly followed actors, read in the background (node/backfill.py).
        backfills = backfill.start_runner(node)
        worker_task = None
        worker = None
        if settings.run_worker:
            worker = DeliveryWorker(node)
            node.wake_worker = worker.wake
            worker_task = asyncio.create_task(worker.run())
        # The sender also queues the digests of matches that are due (node/matching.py).
        mail_sender = (mailqueue.start_sender(node, (matching.queue_due_digests,))
                       if settings.run_worker else None)
        heap.freeze_after_startup()
        try:
            yield
        finally:
            await inbox_runner.stop()
            await backfills.stop()
            await mailqueue.stop_sender(mail_sender)
            if worker is not None and worker_task is not None:
                await worker.stop()
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            await node.stop()

    routes = [
        *wellknown.routes,
        *actors.routes,
        *objects.routes,
        *accounts.routes,
        *passwords.routes,
        *notification_routes.routes,
        *tags.routes,
        *impact_routes.routes,
        *desk_routes.routes,
        *posts.routes,
        *moderation_routes.routes,
        *network_routes.routes,
        # Before web.routes: /admin/{action} would take /admin/organisations.
        *organisation_routes.routes,
        *relay_routes.routes,
        *web.routes,
        Mount("/static", StaticFiles(directory=REPO_ROOT / "templates" / "static"),
              name="static"),
    ]
    app = Starlette(
        middleware=[
            Middleware(SecurityHeadersMiddleware, allow_http_images=settings.allow_http),
            # Then: an abusive client is turned away before any other work.
            Middleware(RateLimitMiddleware, limiter=lambda: node.rate_limiter),
            Middleware(LocaleMiddleware),
            Middleware(ServerSessionMiddleware,
                       secure=settings.base_url.startswith("https://"),
                       may_start=lambda address: node.rate_limiter.may_start_session(address)),
            Middleware(SuspensionMiddleware),
        ],
        # Every error a browser gets is a page in its language; programs get JSON.
        exception_handlers=errors.exception_handlers(),
    )
    # Every route answers as in Starlette's Router; only the routes a path can match are tried.
    app.router = IndexedRouter(routes, lifespan=lifespan)
    app.state.node = node
    return app
