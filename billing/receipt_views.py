"""An order's receipt as a page (printable) and as a PDF download. Thin: read the receipt,
render it."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from billing.receipt_pdf import receipt_response
from billing.receipts import Receipt, order_receipt
from ordering.exceptions import NotFound
from passline.http import AuthenticatedHttpRequest


def _receipt(request: AuthenticatedHttpRequest, order_id: int) -> Receipt:
    try:
        return order_receipt(user=request.user, order_id=order_id)
    except NotFound:
        raise Http404("There is no such order.") from None


@login_required
@require_GET
def receipt_page(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    receipt = _receipt(request, order_id)
    is_customer = receipt.order.customer_id == request.user.pk
    return render(
        request, "billing/receipt.html", {"receipt": receipt, "order": receipt.order, "is_customer": is_customer}
    )


@login_required
@require_GET
def receipt_download(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    receipt = _receipt(request, order_id)
    if not receipt.paid:
        raise Http404("This order was never paid, so it has no receipt.")
    return receipt_response(receipt)
