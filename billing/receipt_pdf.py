"""A receipt as a PDF (reportlab): the same facts as the receipt page, on an A4 page.

Written in DejaVu Sans, a TrueType font embedded in the PDF (the glyphs used only), so dish
and restaurant names in any script print ("Phở bò", "Ελληνική σαλάτα", "Борщ"); the base-14
Helvetica covers Latin-1 only and shows anything else as boxes. Where the font files are
missing (Debian's fonts-dejavu-core, which scripts/setup.sh and the Dockerfile install) it
falls back to Helvetica and logs a warning once."""

from __future__ import annotations

import functools
import io
import logging
from pathlib import Path

from django.http import HttpResponse
from django.utils import timezone
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle
from reportlab.platypus.flowables import Flowable

from billing.receipts import Receipt, line_details
from ordering.models import OrderLine
from ordering.templatetags.site_tags import money

logger = logging.getLogger(__name__)

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FILES = {"PasslineSans": "DejaVuSans.ttf", "PasslineSans-Bold": "DejaVuSans-Bold.ttf"}
FALLBACK = ("Helvetica", "Helvetica-Bold")

GRID = colors.HexColor("#d6c6b6")
MUTED = colors.HexColor("#6b5d52")


@functools.cache
def _fonts(font_dir: Path) -> tuple[str, str]:
    """The (regular, bold) font names to draw with, registered with reportlab once a process."""
    try:
        for name, file in FONT_FILES.items():
            pdfmetrics.registerFont(TTFont(name, str(font_dir / file)))
    except (OSError, TTFError):
        logger.warning(
            "receipt font missing in %s (install fonts-dejavu-core): receipts fall back to Helvetica, "
            "which cannot print names outside Latin-1",
            font_dir,
        )
        return FALLBACK
    regular, bold = FONT_FILES
    pdfmetrics.registerFontFamily(regular, normal=regular, bold=bold, italic=regular, boldItalic=bold)
    return regular, bold


def _when(value: object) -> str:
    return timezone.localtime(value).strftime("%d %b %Y, %H:%M")  # type: ignore[arg-type]


def _rate(value: object) -> str:
    return f"{value}%"


def _table(rows: list[list[str | Paragraph]], widths: list[float], *, total_rows: int, fonts: tuple[str, str]) -> Table:
    regular, bold = fonts
    table = Table(rows, colWidths=widths, repeatRows=1, hAlign="LEFT")
    style = [
        ("FONT", (0, 0), (-1, 0), bold, 9),
        ("FONT", (0, 1), (-1, -1), regular, 10),
        ("TEXTCOLOR", (0, 0), (-1, 0), MUTED),
        ("ALIGN", (1, 0), (-1, -1), "RIGHT"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.5, GRID),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 5),
        ("TOPPADDING", (0, 0), (-1, -1), 5),
    ]
    if total_rows:
        style += [("FONT", (0, -total_rows), (-1, -1), bold, 10)]
    table.setStyle(TableStyle(style))
    return table


def receipt_pdf(receipt: Receipt) -> bytes:
    """The receipt of a paid order as PDF bytes."""
    order = receipt.order
    fonts = _fonts(FONT_DIR)
    styles = getSampleStyleSheet()
    for name in ("Normal", "BodyText"):
        styles[name].fontName = fonts[0]
    for name in ("Title", "Heading1", "Heading2", "Heading3"):
        styles[name].fontName = fonts[1]
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=9, textColor=MUTED, leading=12)
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=20 * mm,
        rightMargin=20 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=f"Receipt for order #{order.pk}",
        author=order.restaurant.name,
    )
    restaurant = order.restaurant
    story: list[Flowable] = [
        Paragraph(_escape(restaurant.name), styles["Title"]),
    ]
    if restaurant.address:
        story.append(Paragraph(_escape(restaurant.address), styles["Normal"]))
    story += [
        Spacer(1, 6 * mm),
        Paragraph(f"Receipt for order #{order.pk}", styles["Heading2"]),
        Paragraph(f"Order date: {_when(order.created_at)}", styles["Normal"]),
        Paragraph(f"Paid: {_when(receipt.paid_at)} by {receipt.payment_method}", styles["Normal"]),
        Paragraph(_escape(receipt.handover), styles["Normal"]),
        Spacer(1, 6 * mm),
    ]
    cell = ParagraphStyle("cell", parent=styles["Normal"], fontSize=10, leading=12)
    line_rows: list[list[str | Paragraph]] = [["Dish", "Qty", "Unit price", "VAT", "Total"]]
    line_rows += [
        [
            Paragraph(_escape(line.name) + _details(line), cell),
            str(line.quantity),
            money(line.unit_price),
            _rate(line.vat_rate),
            money(line.line_total),
        ]
        for line in receipt.lines
    ]
    line_rows += [
        [label, "", "", _rate(rate) if rate is not None else "—", money(amount)]
        for label, rate, amount in receipt.charges
    ]
    line_rows.append(["Total", "", "", "", money(order.total)])
    story.append(_table(line_rows, [75 * mm, 14 * mm, 26 * mm, 20 * mm, 30 * mm], total_rows=1, fonts=fonts))
    story += [Spacer(1, 6 * mm), Paragraph("VAT included", styles["Heading3"])]
    vat_rows: list[list[str | Paragraph]] = [["Rate", "Net", "VAT", "Gross"]]
    vat_rows += [[_rate(r.rate), money(r.net), money(r.vat), money(r.gross)] for r in receipt.vat.rates]
    vat_rows.append(["Total", money(receipt.vat.net), money(receipt.vat.vat), money(receipt.vat.gross)])
    story.append(_table(vat_rows, [35 * mm, 40 * mm, 40 * mm, 40 * mm], total_rows=1, fonts=fonts))
    if receipt.refunded_at is not None:
        story += [
            Spacer(1, 6 * mm),
            Paragraph(f"Refunded in full to the wallet on {_when(receipt.refunded_at)}.", styles["Normal"]),
        ]
    story += [Spacer(1, 10 * mm), Paragraph(f"Prices include VAT. Amounts in {order.currency}.", small)]
    document.build(story)
    return buffer.getvalue()


def receipt_response(receipt: Receipt) -> HttpResponse:
    """The PDF as a download (the page's link and the API answer the same)."""
    response = HttpResponse(receipt_pdf(receipt), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="passline-receipt-{receipt.order.pk}.pdf"'
    # A receipt is personal: no shared cache keeps it.
    response["Cache-Control"] = "private, no-store"
    return response


def _details(line: OrderLine) -> str:
    """A dish's options and note, smaller, on the line under its name."""
    details = line_details(line)
    return f'<br/><font size="8">{_escape(details)}</font>' if details else ""


def _escape(text: str) -> str:
    """Paragraphs read a little markup: the restaurant's and customer's text is shown as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
