"""Photos of restaurants and dishes: an upload checked, re-encoded and cut into the sizes the
pages show (Pillow). Pure: bytes in, bytes out; ``ordering.services.photos`` stores them.

What an upload must be: at most ``PHOTO_MAX_BYTES``, an image Pillow can decode (JPEG, PNG,
WebP, GIF: the first frame), at most ``MAX_PIXELS`` pixels (a small file that decodes into a huge
bitmap, a "decompression bomb", is refused before it is decoded). What is kept: never the
upload's bytes. The picture is turned upright by its EXIF orientation, flattened to RGB, and
written anew as JPEG, so its metadata (the camera, the place it was taken) is dropped, and no
file the customer's browser receives was written by anyone but us.

Variants (``VARIANTS``): ``wide`` pictures (16:9, a restaurant's banner on the list) at 480 and
960 pixels wide, ``square`` ones (a dish on the menu) at 160 and 320, each cut from the middle,
and ``full`` (at most 1600 pixels on its longer side). A set of files shares one name made of
the picture's digest, so a new photo never has the old one's address: browsers and caches may
keep each file for a year.
"""

from __future__ import annotations

import hashlib
import io
import re
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000
FULL_SIDE = 1600
JPEG_QUALITY = 85
# name -> (width, height); height None: the picture's own proportions.
VARIANTS: dict[str, tuple[int, int | None]] = {
    "w480": (480, 270),
    "w960": (960, 540),
    "s160": (160, 160),
    "s320": (320, 320),
    "full": (FULL_SIDE, None),
}
# A stored file: photos/<kind>/<owner id>-<digest>-<variant>.jpg
FILE_NAME = re.compile(r"^photos/(restaurant|dish)/\d{1,19}-[0-9a-f]{16}-(" + "|".join(VARIANTS) + r")\.jpg$")


class PhotoRejected(ValueError):
    """The upload is not a picture we take; the message says why, for the form."""


@dataclass(frozen=True)
class Prepared:
    digest: str  # 16 hex digits of the re-encoded picture
    files: dict[str, bytes]  # variant -> JPEG bytes
    size: tuple[int, int]  # the full variant's width and height


def _jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=JPEG_QUALITY, optimize=True, progressive=True)
    return out.getvalue()


def prepare(data: bytes, *, max_bytes: int) -> Prepared:
    """Check ``data`` and make every variant; :class:`PhotoRejected` when it is not acceptable."""
    if not data:
        raise PhotoRejected("The file is empty.")
    if len(data) > max_bytes:
        raise PhotoRejected(f"The photo is {len(data) / 1_000_000:.1f} MB; at most {max_bytes / 1_000_000:.0f} MB.")
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
            if width * height > MAX_PIXELS:
                raise PhotoRejected(
                    f"The photo is {width} × {height} pixels; at most {MAX_PIXELS // 1_000_000} million."
                )
            probe.verify()  # a truncated or corrupt file fails here, before anything is decoded
        with Image.open(io.BytesIO(data)) as source:
            source.seek(0)
            image = ImageOps.exif_transpose(source).convert("RGB")
    except PhotoRejected:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        raise PhotoRejected("That file is not a picture we can read (JPEG, PNG, WebP or GIF).") from error
    full = image.copy()
    full.thumbnail((FULL_SIDE, FULL_SIDE), Image.Resampling.LANCZOS)
    files = {"full": _jpeg(full)}
    for name, (side, other) in VARIANTS.items():
        if other is not None:
            files[name] = _jpeg(ImageOps.fit(image, (side, other), Image.Resampling.LANCZOS))
    return Prepared(digest=hashlib.sha256(files["full"]).hexdigest()[:16], files=files, size=full.size)


def file_name(kind: str, owner_id: int, digest: str, variant: str) -> str:
    return f"photos/{kind}/{owner_id}-{digest}-{variant}.jpg"
