"""Photos of an offer or a need: up to four pictures, each with a description for people who
cannot see it. The files are cleaned and stored by node/images.py (re-encoded from their pixels:
no EXIF, no GPS position); the post keeps their names and descriptions (`posts.attachments`).

A photo uploaded with a form that is refused for another reason is stored at once and comes
back in the form as a kept photo, so nothing a member sent is lost and nothing is sent twice.
Pictures of other servers' posts are read from the stored Note (activitypub/model.py) and shown
from their origin (see `remote_pictures`)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from starlette.datastructures import FormData, UploadFile

from activitypub.origin import is_http_url
from node import images
from node.context import Node
from node.objects import load_model
from node.posts.text import _

MAX_PHOTOS = 4
# A photo uploaded with a form that was never sent again is deleted after this long (a form
# left open over a weekend still finds its photos), looked for at most once an hour.
ABANDONED_AFTER = 7 * 24 * 3600
SWEEP_EVERY = 3600
_last_sweep: dict[int, float] = {}
ALT_MAX = 1500
# Four photos at the per-image limit, and the text of the form.
MAX_FORM_BYTES = MAX_PHOTOS * images.MAX_UPLOAD_BYTES + 1024 * 1024


@dataclass(frozen=True)
class Photo:
    name: str   # the file under NODE_DATA_DIR/media, served as /media/<name>
    alt: str
    width: int
    height: int
    blurhash: str = ""

    @property
    def path(self) -> str:
        return f"/media/{self.name}"

    @property
    def media_type(self) -> str:
        return images.MEDIA_TYPES[self.name.rsplit(".", 1)[1]]


@dataclass(frozen=True)
class Picture:
    """A picture as a page shows it, ours or another server's."""

    url: str
    alt: str
    width: int | None = None
    height: int | None = None


@dataclass
class Gathered:
    """The photos a form ends up with, what it removes, and what is wrong (by field name)."""

    photos: list[Photo] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)
    # The form as it goes back to the member when something is wrong: every photo kept so far.
    shown: list[dict[str, Any]] = field(default_factory=list)
    uploaded: list[int] = field(default_factory=list)  # slots whose upload is now a kept photo


def photos_of(post: dict[str, Any]) -> list[Photo]:
    try:
        raw = json.loads(post.get("attachments") or "[]")
    except ValueError:
        return []
    found = []
    for item in raw if isinstance(raw, list) else []:
        if isinstance(item, dict) and images.MEDIA_NAME.match(str(item.get("name", ""))):
            found.append(Photo(item["name"], str(item.get("alt", "")), int(item["width"]),
                               int(item["height"]), str(item.get("blurhash", ""))))
    return found


def dump(photos: Iterable[Photo]) -> str:
    return json.dumps([asdict(p) for p in photos], ensure_ascii=False)


def as_attachments(photos: Iterable[Photo], base_url: str) -> list[dict[str, Any]]:
    """FEP-less, Mastodon-shaped `Image` attachments: what Mastodon, GoToSocial and Pixelfed
    read (mediaType, url, name as the description, width, height, blurhash)."""
    return [{"type": "Image", "mediaType": p.media_type, "url": base_url.rstrip("/") + p.path,
             "name": p.alt, "width": p.width, "height": p.height,
             **({"blurhash": p.blurhash} if p.blurhash else {})} for p in photos]


def form_values(photos: Iterable[Photo]) -> list[dict[str, Any]]:
    return [{"name": p.name, "alt": p.alt, "remove": False} for p in photos]


async def gather(node: Node, form: FormData, uploads: bool = True) -> Gathered:
    """The photos of a submitted form: those it keeps (`photo_name_<i>`, `photo_alt_<i>`,
    `photo_remove_<i>`) and those it uploads (`new_photo_<j>`, `new_alt_<j>`; only read when
    `uploads`: a form that failed its CSRF check stores nothing)."""
    result = Gathered()
    data_dir = node.settings.data_dir
    entries: list[dict[str, Any]] = []
    for i in range(MAX_PHOTOS * 2):
        name = str(form.get(f"photo_name_{i}") or "")
        if not name:
            continue
        stored = images.stored_photo(data_dir, name)
        if stored is None:
            continue  # not a photo of this node: nothing to keep
        (images.media_dir(data_dir) / name).touch()  # in use: not swept while a form holds it
        entries.append({"stored": stored, "alt": str(form.get(f"photo_alt_{i}") or "").strip(),
                        "remove": bool(form.get(f"photo_remove_{i}"))})
    problems: list[str] = []
    for j in range(MAX_PHOTOS * 2 if uploads else 0):
        upload = form.get(f"new_photo_{j}")
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        data = await upload.read(images.MAX_UPLOAD_BYTES + 1)
        if not data:
            continue
        try:
            # Decoding and resizing is CPU work: kept off the event loop.
            stored = await asyncio.to_thread(images.store_image, data_dir, data, "photo")
        except images.ImageError as exc:
            # Said with the file's name: the slots are numbered anew when the form comes back.
            problems.append(f"{upload.filename[:80]}: {exc}")
            continue
        entries.append({"stored": stored, "alt": str(form.get(f"new_alt_{j}") or "").strip(),
                        "remove": False})
        result.uploaded.append(j)
    kept = 0
    for index, entry in enumerate(entries):
        stored, alt = entry["stored"], entry["alt"]
        result.shown.append({"name": stored.name, "alt": alt, "remove": entry["remove"]})
        if entry["remove"]:
            result.removed.append(stored.name)
            continue
        kept += 1
        if not alt:
            result.errors[f"photo_alt_{index}"] = _(
                "Describe this photo in a few words for people who cannot see it.")
        elif len(alt) > ALT_MAX:
            result.errors[f"photo_alt_{index}"] = _(
                "The description holds at most %(n)d characters.") % {"n": ALT_MAX}
        result.photos.append(Photo(stored.name, alt[:ALT_MAX], stored.width, stored.height,
                                   stored.blurhash))
    if kept > MAX_PHOTOS:
        problems.append(_("A post has at most %(n)d photos: tick “Remove” on the "
                                    "ones to leave out.") % {"n": MAX_PHOTOS})
    if problems:
        result.errors["photos"] = " ".join(problems)
    if result.uploaded and time.monotonic() - _last_sweep.get(id(node), -SWEEP_EVERY) \
            >= SWEEP_EVERY:
        _last_sweep[id(node)] = time.monotonic()
        await sweep_abandoned(node)
    return result


async def sweep_abandoned(node: Node, older_than: float = ABANDONED_AFTER) -> list[str]:
    """Delete the media files no post and no profile names and that nobody touched for
    `older_than` seconds: photos of forms that were never sent again. Returns their names."""
    folder = images.media_dir(node.settings.data_dir)
    if not folder.is_dir():
        return []
    cutoff = time.time() - older_than
    old = [p.name for p in folder.iterdir()
           if images.MEDIA_NAME.match(p.name) and p.stat().st_mtime < cutoff]
    if not old:
        return []
    used: set[str] = set()
    for row in await node.db.fetch_all(
            "SELECT attachments FROM posts WHERE attachments <> '' AND attachments <> '[]'"):
        used.update(p.name for p in photos_of(row))
    for row in await node.db.fetch_all(
            "SELECT icon_url, image_url FROM actors WHERE icon_url IS NOT NULL "
            "OR image_url IS NOT NULL"):
        used.update((url or "").rsplit("/", 1)[-1] for url in (row["icon_url"], row["image_url"]))
    gone = [name for name in old if name not in used]
    for name in gone:
        (folder / name).unlink(missing_ok=True)
    return gone


async def delete_unused(node: Node, names: Iterable[str]) -> list[str]:
    """Delete the files of photos no post and no organisation uses any more (a file is named by
    its content: the same picture may belong to two posts). Returns the names deleted."""
    deleted = []
    folder = images.media_dir(node.settings.data_dir)
    for name in set(names):
        if not images.MEDIA_NAME.match(name):
            continue
        pattern = f"%/media/{name}%"
        used = await node.db.fetch_val(
            "SELECT 1 FROM posts WHERE attachments LIKE :n LIMIT 1", {"n": f'%"{name}"%'})
        used = used or await node.db.fetch_val(
            "SELECT 1 FROM actors WHERE icon_url LIKE :p OR image_url LIKE :p LIMIT 1",
            {"p": pattern})
        if used:
            continue
        (folder / name).unlink(missing_ok=True)
        deleted.append(name)
    return deleted


async def pictures(node: Node, post: dict[str, Any]) -> list[Picture]:
    """The pictures a post page shows: ours from the post, another server's from its Note."""
    if not post["remote"]:
        return [Picture(p.path, p.alt, p.width, p.height) for p in photos_of(post)]
    return await remote_pictures(node, post["uri"])


async def remote_pictures(node: Node, uri: str) -> list[Picture]:
    """Images another server attached to a post, shown from their origin (hot-linked, as
    remote avatars are): only http(s) URLs, at most MAX_PHOTOS * 2, sized by the page."""
    row = await node.db.fetch_one(
        "SELECT uri, payload, model, local, deleted FROM objects WHERE uri = :u", {"u": uri})
    model = load_model(row) if row is not None else None
    if model is None:
        return []
    return [Picture(a.url, a.alt, a.width, a.height) for a in model.attachments
            if a.is_image and is_http_url(a.url)][: MAX_PHOTOS * 2]
