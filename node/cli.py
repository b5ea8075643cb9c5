"""Command line: `python -m node serve | worker | init | backup | restore`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from urllib.parse import urlsplit

from node.config import load_settings


def _logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


async def _init(settings) -> None:
    from node.bootstrap import bootstrap
    from node.context import Node

    node = Node.create(settings)
    await node.start()
    try:
        first = await bootstrap(node)
    finally:
        await node.stop()
    _announce(settings, first)


def _announce(settings, first) -> None:
    lines = [f"Node ready at {settings.base_url}/"]
    if first is not None:
        lines.append(f"Organisation: @{first.org_username}@{settings.host}")
        lines.append(f"Admin login:  {settings.base_url}/login  email: {first.admin_email}")
        if first.admin_password:
            lines.append(f"              password: {first.admin_password}  (shown once; "
                         "set NODE_ADMIN_PASSWORD to choose it)")
            path = settings.data_dir / "initial-admin-password"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(first.admin_password + "\n")
            path.chmod(0o600)
    print("\n".join(lines), flush=True)


async def _worker(settings) -> None:
    from inbox.runner import start_runner
    from node import heap, mailqueue, matching
    from node.context import Node
    from outbox.worker import DeliveryWorker

    node = Node.create(settings)
    await node.start()
    worker = DeliveryWorker(node)
    mail_sender = mailqueue.start_sender(node, (matching.queue_due_digests,))
    inbox_runner = start_runner(node)
    heap.freeze_after_startup()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.wake.set)
        loop.add_signal_handler(sig, lambda: setattr(worker, "stopping", True))
    try:
        await worker.run()
    finally:
        await inbox_runner.stop()
        await mailqueue.stop_sender(mail_sender)
        await worker.stop()
        await node.stop()


def _backup_or_restore(settings, args) -> int:
    from node.backup import BackupError, backup, pg_dump, postgres_instructions, restore

    try:
        if args.command == "backup":
            if not settings.is_sqlite:
                dumped = pg_dump(settings, args.path)
                if dumped is None:
                    raise BackupError("pg_dump is not installed here. "
                                      + postgres_instructions(settings, args.path, restore=False))
                print(f"Backup written to {dumped}")
                return 0
            print(f"Backup written to {backup(settings, args.path)}")
        else:
            kept = restore(settings, args.path, force=args.force)
            print(f"Restored {args.path}; the previous database is kept at {kept}")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m node", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web node (and its delivery worker)")
    serve.add_argument("--workers", type=int, default=1, help="web worker processes")
    sub.add_parser("worker", help="run a delivery worker (and an inbox resumer) on its own")
    sub.add_parser("init", help="create the database, organisation and admin, then exit")
    backup_cmd = sub.add_parser("backup", help="copy the database to PATH (safe while running)")
    backup_cmd.add_argument("path", nargs="?", help="file or directory (default: data/backups/)")
    restore_cmd = sub.add_parser("restore", help="replace the database by the backup at PATH")
    restore_cmd.add_argument("path")
    restore_cmd.add_argument("--force", action="store_true",
                             help="restore even though a node answers on NODE_BASE_URL")
    args = parser.parse_args(argv)
    settings = load_settings()
    _logging(settings.log_level)
    if args.command in ("backup", "restore"):
        sys.exit(_backup_or_restore(settings, args))
    if args.command == "init":
        asyncio.run(_init(settings))
    elif args.command == "worker":
        asyncio.run(_worker(settings))
    elif args.command == "serve":
        import uvicorn

        from node.http_server import server_options

        # Create the schema and the first organisation before any web worker starts.
        asyncio.run(_init(settings))
        parts = urlsplit(settings.base_url)
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if parts.scheme == "https" else 80)
        import os
        bind = os.environ.get("NODE_BIND_HOST", host)
        bind_port = int(os.environ.get("NODE_BIND_PORT", port))
        uvicorn.run(
            "node.app:create_app", factory=True, host=bind, port=bind_port,
            workers=args.workers, log_level=settings.log_level.lower(),
            proxy_headers=True, access_log=settings.log_level == "DEBUG",
            **server_options(settings),
        )
    else:  # pragma: no cover
        parser.print_help()
        sys.exit(2)
