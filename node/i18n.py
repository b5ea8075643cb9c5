"""Languages of the web interface: French, Dutch and English catalogues, the reader's locale,
and dates and numbers formatted for that locale.

The catalogue of a locale is the committed `translations/<locale>/LC_MESSAGES/messages.po`
plus any other `*.po` file beside it (one per feature, so that work on two features never edits
the same file), read with Babel's `read_po`, merged and compiled in memory when first used, so
no build step (and no .mo file) is needed. Python code marks messages with `_` (translated in
the current request's locale) or `N_` (marked for extraction only, translated later with `_`).
"""

from __future__ import annotations

import contextvars
import functools
import io
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, date, datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from babel import Locale, negotiate_locale
from babel.dates import format_date as babel_format_date
from babel.dates import format_datetime as babel_format_datetime
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations

from node.config import REPO_ROOT

LOCALES = ("fr", "nl", "en")
DEFAULT_LOCALE = "fr"
LANGUAGE_NAMES = {"fr": "Français", "nl": "Nederlands", "en": "English"}
TRANSLATIONS_DIR = REPO_ROOT / "translations"
COOKIE = "lang"
COOKIE_MAX_AGE = 365 * 24 * 3600
# Dates are shown in the node's local time; the node serves one region.
TIMEZONE = ZoneInfo("Europe/Brussels")

_current: contextvars.ContextVar[str] = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)


def catalogue(locale: str) -> Catalog | None:
    """Every .po file of a locale as one catalogue: `messages.po` first, then the feature files
    in name order. An entry translated in one file is never undone by an empty or fuzzy copy of
    it in another (`pybabel update` adds untranslated copies to messages.po)."""
    folder = TRANSLATIONS_DIR / locale / "LC_MESSAGES"
    main = folder / "messages.po"
    if locale not in LOCALES or not main.exists():
        return None
    paths = [main, *sorted(p for p in folder.glob("*.po") if p.name != "messages.po")]
    merged: Catalog | None = None
    for path in paths:
        with path.open("rb") as fp:
            part = read_po(fp, locale=locale)
        if merged is None:
            merged = part
            continue
        for entry in part:
            if not entry.id or not _translated(entry):
                continue
            known = merged.get(entry.id)
            if known is None or not _translated(known):
                if known is not None:
                    merged.delete(entry.id)
                merged[entry.id] = entry
    return merged


def _translated(entry: Message) -> bool:
    strings = entry.string if isinstance(entry.string, tuple) else (entry.string,)
    return all(strings) and "fuzzy" not in entry.flags


@functools.cache
def translations(locale: str) -> NullTranslations:
    """The catalogue of a locale, compiled from its .po files once per process."""
    catalog = catalogue(locale)
    if catalog is None:
        return NullTranslations()
    # A "fuzzy" header would be left out of the compiled catalogue, and its plural rule with it.
    catalog.fuzzy = False
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def current_locale() -> str:
    return _current.get()


def set_locale(locale: str) -> contextvars.Token[str]:
    return _current.set(locale if locale in LOCALES else DEFAULT_LOCALE)


def reset_locale(token: contextvars.Token[str]) -> None:
    _current.reset(token)


def gettext(message: str) -> str:
    """`message` in the current request's language."""
    return translations(_current.get()).gettext(message)


_ = gettext


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ngettext(singular, plural, n)


def N_(message: str) -> str:  # noqa: N802 - the name pybabel looks for
    """Marks a message for extraction without translating it now (module-level constants)."""
    return message


def translate(locale: str, message: str) -> str:
    """`message` in a given language (emails, written for their reader, not for the request)."""
    return translations(locale if locale in LOCALES else DEFAULT_LOCALE).gettext(message)


# --- choosing the reader's locale ------------------------------------------------------------

def valid_locale(value: str | None) -> str | None:
    value = (value or "").strip().lower()[:5].replace("-", "_").split("_")[0]
    return value if value in LOCALES else None


def parse_accept_language(header: str) -> list[str]:
    """Language tags of an Accept-Language header, most wanted first (q=0 dropped)."""
    weighted: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _sep, params = part.strip().partition(";")
        tag = tag.strip()
        if not tag or tag == "*":
            continue
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if q > 0:
            weighted.append((-q, index, tag.replace("-", "_")))
    return [tag for _q, _i, tag in sorted(weighted)]


def negotiate(query_lang: str | None, cookie_lang: str | None, accept_language: str) -> str:
    """The `lang` query parameter, else the `lang` cookie, else the browser's choice, else
    French."""
    for explicit in (query_lang, cookie_lang):
        chosen = valid_locale(explicit)
        if chosen:
            return chosen
    preferred = parse_accept_language(accept_language)
    found = negotiate_locale(preferred, list(LOCALES), sep="_")
    if found is None:
        # "nl_BE" does not match "nl" in negotiate_locale: fall back to the language part.
        found = next((valid_locale(tag) for tag in preferred if valid_locale(tag)), None)
    return found or DEFAULT_LOCALE


class LocaleMiddleware:
    """Sets the locale of each HTTP request (readable with `current_locale()`, used by `_`),
    and remembers an explicit `?lang=` choice in a cookie."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        query_lang = valid_locale((query.get("lang") or [""])[0])
        cookie_lang = None
        if COOKIE in headers.get("cookie", ""):
            cookies = SimpleCookie()
            try:
                cookies.load(headers["cookie"])
            except Exception:  # a malformed cookie header must not break the page
                cookies = SimpleCookie()
            cookie_lang = cookies[COOKIE].value if COOKIE in cookies else None
        locale = negotiate(query_lang, cookie_lang, headers.get("accept-language", ""))
        scope.setdefault("state", {})["locale"] = locale
        token = set_locale(locale)

        async def send_with_cookie(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and query_lang:
                cookie = (f"{COOKIE}={query_lang}; Path=/; Max-Age={COOKIE_MAX_AGE}; "
                          "SameSite=Lax")
                message.setdefault("headers", []).append(
                    (b"set-cookie", cookie.encode("latin-1")))
            await send(message)

        try:
            await self.app(scope, receive, send_with_cookie if query_lang else send)
        finally:
            reset_locale(token)


def language_cookie(locale: str) -> dict[str, Any]:
    """Arguments for `Response.set_cookie` that remember a chosen language."""
    return {"key": COOKIE, "value": locale, "max_age": COOKIE_MAX_AGE, "path": "/",
            "samesite": "lax"}


# --- formatting in the reader's locale -------------------------------------------------------

@functools.cache
def _babel_locale(code: str) -> Locale:
    return Locale.parse(code)


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def format_datetime(value: Any, format: str = "medium", locale: str | None = None) -> str:
    """A moment (datetime, UNIX time or ISO 8601 text) in the reader's words and time zone."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    return babel_format_datetime(moment, format=format, tzinfo=TIMEZONE,
                                 locale=_babel_locale(locale or _current.get()))


def format_date(value: Any, format: str = "medium", locale: str | None = None) -> str:
    if isinstance(value, date) and not isinstance(value, datetime):
        return babel_format_date(value, format=format,
                                 locale=_babel_locale(locale or _current.get()))
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    return babel_format_date(moment.astimezone(TIMEZONE).date(), format=format,
                             locale=_babel_locale(locale or _current.get()))


def format_number(value: Any, locale: str | None = None, digits: int | None = None) -> str:
    """A number in the reader's locale; with `digits`, always that many decimals."""
    if value is None or value == "":
        return ""
    try:
        number = float(value) if not isinstance(value, int) else value
    except (TypeError, ValueError):
        return str(value)
    pattern = None if digits is None else "#,##0" + ("." + "0" * digits if digits else "")
    return format_decimal(number, format=pattern, locale=_babel_locale(locale or _current.get()))


def language_name(code: str, locale: str | None = None) -> str:
    """A language code ("ar", "nl") as the reader calls it ("arabe", "néerlandais")."""
    try:
        name = Locale.parse(code).get_display_name(_babel_locale(locale or _current.get()))
    except (ValueError, TypeError):
        return code
    return name or code


def language_url(url: Any, locale: str) -> str:
    """The same page (path and query) in another language: what the switcher links to."""
    switched = url.include_query_params(lang=locale)
    return f"{switched.path}?{switched.query}"


def install(environment: Any) -> None:
    """Gives a Jinja environment `_`, `gettext`, `ngettext` and the `date`, `datetime`,
    `number` and `language_name` filters, all following the locale of the request being
    rendered."""
    environment.install_gettext_callables(gettext, ngettext, newstyle=True)
    environment.filters["date"] = format_date
    environment.filters["datetime"] = format_datetime
    environment.filters["number"] = format_number
    environment.filters["language_name"] = language_name
    environment.globals["current_locale"] = current_locale
    environment.globals["language_url"] = language_url
    environment.globals["LOCALES"] = LOCALES
    environment.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
