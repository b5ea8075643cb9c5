"""Settings read from the environment; every variable is documented in the README."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from node.ratelimit import Limits, Rate

REPO_ROOT = Path(__file__).resolve().parent.parent


def _flag(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    base_url: str = "http://127.0.0.1:8000"
    database_url: str = "sqlite:///data/node.db"
    secret_key: str = ""
    log_level: str = "INFO"
    data_dir: Path = field(default=REPO_ROOT / "data")
    org_username: str = "voisins"
    org_name: str = "Voisins solidaires"
    admin_email: str = "admin@example.org"
    admin_password: str = ""
    # Loopback and private addresses are refused for outgoing requests unless this is set:
    # tests and local development run every node on 127.0.0.x.
    allow_private_addresses: bool = False
    # Plain http for WebFinger and fetches when the peer is not reachable over https (dev, tests).
    allow_http: bool = False
    run_worker: bool = True
    # Serve ActivityPub documents only to signed GETs (Mastodon's secure mode).
    authorized_fetch: bool = False
    max_inbox_bytes: int = 1024 * 1024
    # Behind a proxy that rewrites Host: take the client's Host from X-Forwarded-Host.
    trust_forwarded_host: bool = False
    # The web server's limits on a request head (node/http_server.py) and on idle connections.
    max_header_bytes: int = 32 * 1024
    header_timeout: float = 10.0
    # A request body: the longest silence between two of its bytes, and its whole time.
    body_idle_timeout: float = 20.0
    body_timeout: float = 300.0
    keep_alive_timeout: float = 5.0
    # Multiplies the delivery retry delays; tests shrink it to seconds.
    backoff_scale: float = 1.0
    delivery_timeout: float = 10.0
    fetch_timeout: float = 10.0
    max_fetch_bytes: int = 1024 * 1024
    per_host_concurrency: int = 4
    worker_concurrency: int = 16
    # Token buckets for the inbox, sign-in and sign-up (NODE_RATE_*; see node/ratelimit.py).
    rate_limits: Limits = field(default_factory=lambda: Limits.from_env({}))
    # Seconds an inbox activity in progress stays reserved to its process (inbox/queue.py).
    inbox_lease: float = 60.0
    # Seconds an inbox POST waits for its handler before answering 202 (inbox/runner.py).
    inbox_wait: float = 3.0
    # Reports filed per reporter and per reporting server, counted over the period (None: off).
    reports_per_reporter: Rate | None = Rate(10, 86400)
    reports_per_server: Rate | None = Rate(20, 86400)
    # Notification emails go out only when an SMTP host is set.
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: bool = False
    # Offers and needs: needs expire after this many days unless they say otherwise.
    need_expiry_days: int = 30
    # `Name:lat:lon;Name:lat:lon`; empty means the 19 municipalities of Brussels.
    neighbourhoods: str = ""
    # Matching (node/matching.py): how far apart a need and an offer still fit, and how long
    # matches wait to be mailed together to a member who chose a daily digest.
    match_radius_km: float = 4.0
    match_digest_seconds: float = 86400.0

    @property
    def host(self) -> str:
        """The authority (host[:port]) used in handles and signatures."""
        return urlsplit(self.base_url).netloc

    @property
    def domain(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def _load_secret(data_dir: Path) -> str:
    """A random secret kept beside the database, so sessions survive a restart."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    data_dir = Path(env.get("NODE_DATA_DIR") or REPO_ROOT / "data")
    base_url = env.get("NODE_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
    loopback = (urlsplit(base_url).hostname or "").startswith(("127.", "localhost"))
    database_url = env.get("NODE_DATABASE_URL") or f"sqlite:///{data_dir / 'node.db'}"
    return Settings(
        base_url=base_url,
        database_url=database_url,
        secret_key=env.get("NODE_SECRET_KEY") or _load_secret(data_dir),
        log_level=env.get("NODE_LOG_LEVEL", "INFO").upper(),
        data_dir=data_dir,
        org_username=env.get("NODE_ORG_USERNAME", "voisins"),
        org_name=env.get("NODE_ORG_NAME", "Voisins solidaires"),
        admin_email=env.get("NODE_ADMIN_EMAIL", "admin@example.org"),
        admin_password=env.get("NODE_ADMIN_PASSWORD", ""),
        allow_private_addresses=_flag(env.get("NODE_ALLOW_PRIVATE_ADDRESSES"), loopback),
        allow_http=_flag(env.get("NODE_ALLOW_HTTP"), loopback),
        run_worker=_flag(env.get("NODE_RUN_WORKER"), True),
        authorized_fetch=_flag(env.get("NODE_AUTHORIZED_FETCH"), False),
        max_inbox_bytes=int(env.get("NODE_MAX_INBOX_BYTES", 1024 * 1024)),
        trust_forwarded_host=_flag(env.get("NODE_TRUST_FORWARDED_HOST"), False),
        max_header_bytes=int(env.get("NODE_MAX_HEADER_BYTES") or 32 * 1024),
        header_timeout=float(env.get("NODE_HEADER_TIMEOUT") or 10),
        body_idle_timeout=float(env.get("NODE_BODY_IDLE_TIMEOUT") or 20),
        body_timeout=float(env.get("NODE_BODY_TIMEOUT") or 300),
        keep_alive_timeout=float(env.get("NODE_KEEP_ALIVE_TIMEOUT") or 5),
        backoff_scale=float(env.get("NODE_BACKOFF_SCALE", 1.0)),
        delivery_timeout=float(env.get("NODE_DELIVERY_TIMEOUT", 10.0)),
        fetch_timeout=float(env.get("NODE_FETCH_TIMEOUT", 10.0)),
        rate_limits=Limits.from_env(env),
        inbox_lease=float(env.get("NODE_INBOX_LEASE") or 60),
        inbox_wait=float(env.get("NODE_INBOX_WAIT") or 3),
        reports_per_reporter=Rate.parse(env.get("NODE_REPORTS_PER_REPORTER", "10/86400")),
        reports_per_server=Rate.parse(env.get("NODE_REPORTS_PER_SERVER", "20/86400")),
        smtp_host=env.get("NODE_SMTP_HOST", ""),
        smtp_port=int(env.get("NODE_SMTP_PORT") or 25),
        smtp_user=env.get("NODE_SMTP_USER", ""),
        smtp_password=env.get("NODE_SMTP_PASSWORD", ""),
        smtp_from=env.get("NODE_SMTP_FROM", ""),
        smtp_starttls=_flag(env.get("NODE_SMTP_STARTTLS"), False),
        need_expiry_days=int(env.get("NODE_NEED_EXPIRY_DAYS") or 30),
        neighbourhoods=env.get("NODE_NEIGHBOURHOODS", ""),
        match_radius_km=float(env.get("NODE_MATCH_RADIUS_KM") or 4),
        match_digest_seconds=float(env.get("NODE_MATCH_DIGEST_SECONDS") or 86400),
    )
