"""Uploaded photos (ordering/photos.py): what is refused, and what is kept of what is taken.
Pure: Pillow on bytes made here."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ordering.photos import FILE_NAME, MAX_PIXELS, PhotoRejected, file_name, prepare

LIMIT = 5 * 1024 * 1024


def image_bytes(size=(1200, 800), colour="orange", fmt="JPEG", **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, fmt, **save)
    return out.getvalue()


def test_every_variant_is_a_jpeg_of_its_size_and_the_name_follows_the_content() -> None:
    prepared = prepare(image_bytes(fmt="PNG"), max_bytes=LIMIT)
    sizes = {name: Image.open(io.BytesIO(data)).size for name, data in prepared.files.items()}
    assert sizes == {
        "full": (1200, 800),
        "w480": (480, 270),
        "w960": (960, 540),
        "s160": (160, 160),
        "s320": (320, 320),
    }
    assert all(Image.open(io.BytesIO(data)).format == "JPEG" for data in prepared.files.values())
    assert len(prepared.digest) == 16
    assert prepare(image_bytes(fmt="PNG"), max_bytes=LIMIT).digest == prepared.digest
    assert prepare(image_bytes(colour="green"), max_bytes=LIMIT).digest != prepared.digest


def test_a_large_picture_is_scaled_down_to_1600_on_its_longer_side() -> None:
    prepared = prepare(image_bytes(size=(4000, 1000)), max_bytes=LIMIT)
    assert prepared.size == (1600, 400)


def test_exif_orientation_is_applied_and_the_metadata_dropped() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90°: stored landscape, shown portrait
    exif[0x010F] = "SecretCam"  # the camera's maker
    data = image_bytes(size=(800, 600), exif=exif.tobytes())
    full = Image.open(io.BytesIO(prepare(data, max_bytes=LIMIT).files["full"]))
    assert full.size == (600, 800)
    assert not full.getexif() and b"SecretCam" not in prepare(data, max_bytes=LIMIT).files["full"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"GIF89a not really", "not a picture"),
        (b"%PDF-1.4 a document", "not a picture"),
        (image_bytes()[:400], "not a picture"),  # truncated
    ],
)
def test_what_is_not_a_picture_is_refused(data: bytes, message: str) -> None:
    with pytest.raises(PhotoRejected, match=message):
        prepare(data, max_bytes=LIMIT)


def test_too_many_bytes_or_pixels_are_refused_before_decoding() -> None:
    with pytest.raises(PhotoRejected, match="at most 1 MB"):
        prepare(b"x" * 1_100_000, max_bytes=1_000_000)
    # a "bomb": tiny as a PNG, huge once decoded
    side = int(MAX_PIXELS**0.5) + 100
    bomb = io.BytesIO()
    Image.new("1", (side, side)).save(bomb, "PNG", optimize=True)
    assert len(bomb.getvalue()) < LIMIT
    with pytest.raises(PhotoRejected, match="pixels"):
        prepare(bomb.getvalue(), max_bytes=LIMIT)


def test_only_our_file_names_match() -> None:
    assert FILE_NAME.match(file_name("dish", 12, "0123456789abcdef", "s160"))
    for name in ("photos/dish/12-0123456789abcdef-s160.jpg/../../settings.py", "../etc/passwd", "photos/dish/x.jpg"):
        assert not FILE_NAME.fullmatch(name)
