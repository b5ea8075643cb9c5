"""Images people upload (an organisation's avatar and header, the photos of a post): checked,
resized and re-encoded from their pixels alone, so that no metadata — EXIF, GPS position,
camera, comments, colour profiles carrying names — leaves the node.
Stored by content under NODE_DATA_DIR/media."""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import blurhash
from PIL import Image, ImageOps, UnidentifiedImageError

from node.i18n import _

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
# A small file may still declare a huge canvas (a decompression bomb): refused before decoding.
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = {"JPEG", "PNG", "GIF", "WEBP"}
# Sizes Mastodon itself uses: a square avatar and a 3:1 header, cropped to fill; a photo is
# fitted inside its box whole (a room or a coat is not cropped), never enlarged.
SIZES = {"avatar": (400, 400), "header": (1500, 500), "photo": (1600, 1600)}
CROPPED = {"avatar", "header"}
# Mastodon refuses a blurhash of more than 5 components either way.
BLURHASH_COMPONENTS = (4, 3)
MEDIA_NAME = re.compile(r"^[0-9a-f]{32}\.(jpg|png)$")
MEDIA_TYPES = {"jpg": "image/jpeg", "png": "image/png"}


class ImageError(ValueError):
    pass


@dataclass(frozen=True)
class StoredImage:
    path: str  # the URL path under which the node serves it, /media/<name>
    width: int
    height: int
    blurhash: str = ""  # photos only: the blurred preview Mastodon shows while loading

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.name.rsplit(".", 1)[1]]


def media_dir(data_dir: Path) -> Path:
    return data_dir / "media"


def clean_image(data: bytes, purpose: str) -> tuple[bytes, str, tuple[int, int]]:
    """`data` decoded, turned upright, cropped and resized for `purpose`, and encoded anew;
    returns the bytes, the extension and the size."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImageError(_("The image is too large (at most %(mb)s MB).")
                         % {"mb": MAX_UPLOAD_BYTES // (1024 * 1024)})
    try:
        with Image.open(io.BytesIO(data)) as source:
            if source.format not in ACCEPTED_FORMATS:
                raise ImageError(_("Send a JPEG, PNG, GIF or WebP image."))
            if source.width * source.height > MAX_PIXELS:
                raise ImageError(_("The image has too many pixels."))
            source.seek(0)  # the first frame of an animation
            upright = ImageOps.exif_transpose(source)
            has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
                upright.mode == "P" and "transparency" in upright.info)
            pixels = upright.convert("RGBA" if has_alpha else "RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ImageError(_("This file is not an image the node can read.")) from exc
    if purpose in CROPPED:
        fitted = ImageOps.fit(pixels, SIZES[purpose], Image.Resampling.LANCZOS)
    else:
        fitted = pixels.copy()
        fitted.thumbnail(SIZES[purpose], Image.Resampling.LANCZOS)
    # A new image from the pixel bytes alone: nothing of the source's `info` can follow.
    bare = Image.frombytes(fitted.mode, fitted.size, fitted.tobytes())
    out = io.BytesIO()
    if has_alpha:
        bare.save(out, "PNG", optimize=True)
        return out.getvalue(), "png", bare.size
    bare.save(out, "JPEG", quality=85, optimize=True, progressive=True)
    return out.getvalue(), "jpg", bare.size


def store_image(data_dir: Path, data: bytes, purpose: str) -> StoredImage:
    """The cleaned image written under its content hash: the same picture keeps its URL, a new
    one gets a new URL (peers such as Mastodon download an avatar again only when it changes)."""
    encoded, ext, (width, height) = clean_image(data, purpose)
    name = f"{hashlib.sha256(encoded).hexdigest()[:32]}.{ext}"
    folder = media_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        partial = folder / f".{name}.part"
        partial.write_bytes(encoded)
        partial.replace(target)
    else:
        target.touch()  # sent again: in use now (node/posts/photos.py sweeps untouched files)
    preview = blurhash_of(encoded) if purpose not in CROPPED else ""
    return StoredImage(f"/media/{name}", width, height, preview)


def blurhash_of(encoded: bytes) -> str:
    """The blurhash of an image the node encoded: computed on a 32-pixel copy (a few colours
    is all a blurhash keeps, and the pure-Python encoder is then quick)."""
    with Image.open(io.BytesIO(encoded)) as image:
        small = image.convert("RGB")
        small.thumbnail((32, 32), Image.Resampling.BILINEAR)
        rows = [[small.getpixel((x, y)) for x in range(small.width)]
                for y in range(small.height)]
    return blurhash.encode(rows, *BLURHASH_COMPONENTS)


def stored_photo(data_dir: Path, name: str) -> StoredImage | None:
    """A photo the node already stored (named by its content), described again from the file;
    None when no such file is here."""
    if not MEDIA_NAME.match(name):
        return None
    path = media_dir(data_dir) / name
    if not path.is_file():
        return None
    encoded = path.read_bytes()
    try:
        with Image.open(io.BytesIO(encoded)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError):
        return None
    return StoredImage(f"/media/{name}", width, height, blurhash_of(encoded))
