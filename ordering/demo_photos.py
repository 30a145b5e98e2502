"""Pictures for the demo's restaurants and dishes, drawn with Pillow when the demo data is
loaded: a plate on a coloured table, with the dish's colours on it. No file is downloaded or
committed; each name always gives the same picture."""

from __future__ import annotations

import hashlib
import io

from PIL import Image, ImageDraw, ImageFilter

SIZE = (960, 540)
TABLES = ["#7c2d12", "#115e59", "#3730a3", "#78350f", "#9f1239", "#14532d"]
FOODS = ["#f59e0b", "#dc2626", "#65a30d", "#fbbf24", "#b45309", "#16a34a", "#ea580c", "#f5f5f4", "#a16207"]


def picture(name: str) -> bytes:
    """A JPEG of a plate for ``name`` (a restaurant or a dish)."""
    seed = hashlib.sha256(name.encode()).digest()
    width, height = SIZE
    image = Image.new("RGB", SIZE, TABLES[seed[0] % len(TABLES)])
    draw = ImageDraw.Draw(image)
    # the table's grain
    for row in range(0, height, 18):
        draw.line([(0, row), (width, row + seed[1] % 12)], fill=TABLES[(seed[0] + 1) % len(TABLES)], width=2)
    centre_x, centre_y, radius = width // 2, height // 2, int(height * 0.42)
    shadow = Image.new("L", SIZE, 0)
    ImageDraw.Draw(shadow).ellipse(
        [centre_x - radius + 14, centre_y - radius + 18, centre_x + radius + 14, centre_y + radius + 18], fill=120
    )
    image.paste((0, 0, 0), mask=shadow.filter(ImageFilter.GaussianBlur(18)))
    draw.ellipse([centre_x - radius, centre_y - radius, centre_x + radius, centre_y + radius], fill="#fafaf9")
    inner = int(radius * 0.78)
    draw.ellipse([centre_x - inner, centre_y - inner, centre_x + inner, centre_y + inner], outline="#e7e5e4", width=4)
    # the food: a few overlapping blobs in the dish's colours
    for index in range(5 + seed[2] % 4):
        colour = FOODS[seed[3 + index] % len(FOODS)]
        size = int(inner * (0.35 + (seed[10 + index] % 40) / 100))
        offset_x = (seed[20 + index] % 100 - 50) * inner // 110
        offset_y = (seed[28 + index % 4] % 100 - 50) * inner // 130
        x, y = centre_x + offset_x, centre_y + offset_y
        draw.ellipse([x - size // 2, y - size // 2, x + size // 2, y + size // 2], fill=colour)
    out = io.BytesIO()
    image.filter(ImageFilter.SMOOTH).save(out, "JPEG", quality=88)
    return out.getvalue()
