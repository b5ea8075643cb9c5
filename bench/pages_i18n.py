"""What languages and notifications cost a page: locale negotiation, rendering a translated
template, and whole pages through the ASGI app (SQLite) for an anonymous reader in each
language and for a signed-in member with many notifications (unread count in the menu, the
list page). Prints rates; asserts nothing.

    .venv/bin/python -m bench.pages_i18n [--seconds 2] [--notifications 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

from node import i18n
from node.app import create_app
from node.config import load_settings
from node.db import dumps, now
from node.web_support import TEMPLATES


def rate(seconds: float, work: Callable[[], object]) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        work()
        done += 1
    return done / (time.perf_counter() - start)


async def arate(seconds: float, work: Callable[[], Awaitable[object]]) -> float:
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        await work()
        done += 1
    return done / (time.perf_counter() - start)


class FakeUrl:
    path = "/login"

    def include_query_params(self, **params: str) -> httpx.URL:
        return httpx.URL("/login", params=params)


class FakeRequest:
    url = FakeUrl()


SETTINGS = load_settings({"NODE_SECRET_KEY": "bench"})


def render_login(locale: str) -> str:
    token = i18n.set_locale(locale)
    try:
        return TEMPLATES.get_template("login.html").render(
            request=FakeRequest(), user=None, unread_notifications=0, csrf_token="x",
            settings=SETTINGS, lang=locale, error=None)
    finally:
        i18n.reset_locale(token)


async def pages(seconds: float, notifications: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings({
            "NODE_BASE_URL": "http://127.0.0.1:8999", "NODE_DATA_DIR": tmp,
            "NODE_DATABASE_URL": f"sqlite:///{Path(tmp) / 'bench.db'}",
            "NODE_SECRET_KEY": "bench", "NODE_ADMIN_PASSWORD": "bench password",
            "NODE_RUN_WORKER": "0", "NODE_RATE_LOGIN_PER_ADDRESS": "1000000/1",
            "NODE_RATE_SIGNUP_PER_ADDRESS": "1000000/1",
        })
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            node = app.state.node
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport,
                                         base_url=settings.base_url) as client:
                for locale in i18n.LOCALES:
                    headers = {"Accept-Language": locale}
                    r = await arate(seconds, lambda h=headers: client.get("/login", headers=h))
                    print(f"GET /login anonymous, {locale}: {r:8.0f} pages/s")
                page = await client.get("/signup")
                token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
                await client.post("/signup", data={
                    "csrf_token": token, "email": "bench@example.org",
                    "password": "bench password", "confirm": "bench password"})
                user_id = await node.db.fetch_val("SELECT id FROM users WHERE email = :e",
                                                  {"e": "bench@example.org"})
                rows = [{"u": user_id, "k": "new_post", "t": now() - i,
                         "p": dumps({"title": f"Post {i}", "url": f"/posts/{i}"}),
                         "r": int(i % 3 == 0)} for i in range(notifications)]
                await node.db.execute_many(
                    "INSERT INTO notifications (user_id, kind, payload, is_read, created_at) "
                    "VALUES (:u, :k, :p, :r, :t)", rows)
                r = await arate(seconds, lambda: client.get("/account"))
                print(f"GET /account signed in ({notifications} notifications): "
                      f"{r:8.0f} pages/s")
                r = await arate(seconds, lambda: client.get("/notifications"))
                print(f"GET /notifications signed in (lists 50): {r:8.0f} pages/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--notifications", type=int, default=5000)
    args = parser.parse_args()
    accept = "de-DE,de;q=0.9,nl-BE;q=0.8,en;q=0.5"
    print(f"negotiate(Accept-Language with 4 tags): "
          f"{rate(args.seconds, lambda: i18n.negotiate(None, None, accept)):10.0f} /s")
    for locale in i18n.LOCALES:
        render_login(locale)  # compiles the catalogue and the template once
        r = rate(args.seconds, lambda loc=locale: render_login(loc))
        print(f"render login.html, {locale}: {r:10.0f} /s")
    r = rate(args.seconds, lambda: i18n.format_datetime(now(), locale="nl"))
    print(f"format_datetime, nl: {r:10.0f} /s")
    asyncio.run(pages(args.seconds, args.notifications))


if __name__ == "__main__":
    main()
