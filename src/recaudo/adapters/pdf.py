"""PDF documents drawn with reportlab: the payment coupon with its GS1-128 barcode.

The coupon is one A4 page, in Spanish (payers read it): the company's data, the
service, the coupon number, the references in the service's order, the amount, the due
date, the barcode and, under it, the human-readable line. The barcode is reportlab's
`Code128` fed with `PaymentCode.barcode_input()`: a leading FNC1 (`\\xf1`) makes it
GS1-128 and the same character separates variable-length elements.

Output is byte-for-byte reproducible (`invariant=True`: no creation date or random id).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from reportlab.graphics.barcode.code128 import Code128
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from recaudo.formats.gs1_128 import PaymentCode

# Module width of the bars: 0.33 mm is GS1's nominal X-dimension for scanning at a till.
BAR_WIDTH = 0.33 * mm
BAR_HEIGHT = 18 * mm
MARGIN = 18 * mm


@dataclass(frozen=True)
class CouponDocument:
    company_name: str
    company_tax_id: str
    service_name: str
    number: str
    amount_text: str
    due_date: date | None
    code: PaymentCode
    references: Sequence[tuple[str, str]] = field(default_factory=tuple)
    issued_on: date | None = None
    note: str = ""


def _date(value: date | None) -> str:
    return value.strftime("%d/%m/%Y") if value is not None else "—"


def barcode(code: PaymentCode, max_width: float) -> Code128:
    """The bars at the nominal module width, narrowed if they would not fit `max_width`."""
    bars = Code128(code.barcode_input(), barWidth=BAR_WIDTH, barHeight=BAR_HEIGHT, quiet=True)
    if bars.width > max_width:
        bars = Code128(
            code.barcode_input(),
            barWidth=BAR_WIDTH * max_width / bars.width,
            barHeight=BAR_HEIGHT,
            quiet=True,
        )
    return bars


def coupon_pdf(doc: CouponDocument) -> bytes:
    """The coupon as PDF bytes."""
    out = io.BytesIO()
    width, height = A4
    canvas = Canvas(out, pagesize=A4, invariant=True)
    canvas.setTitle(f"Cupón de pago {doc.number}")
    canvas.setAuthor(doc.company_name)
    y = height - MARGIN

    canvas.setFont("Helvetica-Bold", 16)
    canvas.drawString(MARGIN, y, doc.company_name)
    canvas.setFont("Helvetica", 10)
    y -= 6 * mm
    canvas.drawString(MARGIN, y, f"NIT {doc.company_tax_id}")
    canvas.setFont("Helvetica-Bold", 12)
    canvas.drawRightString(width - MARGIN, height - MARGIN, "CUPÓN DE PAGO")
    canvas.setFont("Helvetica", 10)
    canvas.drawRightString(width - MARGIN, height - MARGIN - 6 * mm, f"No. {doc.number}")
    if doc.issued_on is not None:
        canvas.drawRightString(
            width - MARGIN, height - MARGIN - 11 * mm, f"Expedido: {_date(doc.issued_on)}"
        )

    y -= 12 * mm
    canvas.line(MARGIN, y, width - MARGIN, y)
    y -= 8 * mm
    canvas.setFont("Helvetica-Bold", 11)
    canvas.drawString(MARGIN, y, doc.service_name)
    y -= 8 * mm

    canvas.setFont("Helvetica", 10)
    for title, value in doc.references:
        canvas.drawString(MARGIN, y, f"{title}:")
        canvas.drawString(MARGIN + 60 * mm, y, value)
        y -= 6 * mm
    canvas.drawString(MARGIN, y, "Referencia de pago:")
    canvas.drawString(MARGIN + 60 * mm, y, doc.code.reference)
    y -= 10 * mm

    canvas.setFont("Helvetica-Bold", 13)
    canvas.drawString(MARGIN, y, "Valor a pagar:")
    canvas.drawString(MARGIN + 60 * mm, y, doc.amount_text)
    y -= 7 * mm
    canvas.drawString(MARGIN, y, "Pagar hasta:")
    canvas.drawString(MARGIN + 60 * mm, y, _date(doc.due_date))
    y -= 8 * mm
    if doc.note:
        canvas.setFont("Helvetica", 9)
        canvas.drawString(MARGIN, y, doc.note)
        y -= 6 * mm

    y -= BAR_HEIGHT + 6 * mm
    bars = barcode(doc.code, width - 2 * MARGIN)
    bars.drawOn(canvas, MARGIN, y)
    y -= 5 * mm
    canvas.setFont("Courier", 9)
    canvas.drawString(MARGIN, y, doc.code.human_readable())
    y -= 8 * mm
    canvas.setFont("Helvetica", 8)
    canvas.drawString(
        MARGIN,
        y,
        "Pague este cupón en las oficinas y corresponsales bancarios autorizados "
        "presentando el código de barras.",
    )
    canvas.showPage()
    canvas.save()
    return out.getvalue()
