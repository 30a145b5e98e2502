"""The OpenAPI document and the API's answers to URLs and methods it does not have."""

from __future__ import annotations

import pytest
from django.test import Client

from ordering import services

pytestmark = pytest.mark.django_db

CONTRACT = {
    ("post", "/api/v1/auth/register"): "201",
    ("post", "/api/v1/auth/token"): "200",
    ("get", "/api/v1/restaurants"): "200",
    ("get", "/api/v1/restaurants/{restaurant_id}/menu"): "200",
    ("get", "/api/v1/restaurants/{restaurant_id}/slots"): "200",
    ("get", "/api/v1/wallet"): "200",
    ("post", "/api/v1/wallet/top-up"): "200",
    ("post", "/api/v1/orders"): "201",
    ("get", "/api/v1/orders"): "200",
    ("get", "/api/v1/orders/{order_id}"): "200",
    ("post", "/api/v1/orders/{order_id}/cancel"): "200",
    ("get", "/api/v1/kitchen/{restaurant_id}/orders"): "200",
    ("post", "/api/v1/kitchen/orders/{order_id}/transition"): "200",
}


def test_openapi_document_describes_every_contract_endpoint():
    response = Client().get("/api/v1/openapi.json")

    assert response.status_code == 200
    schema = response.json()
    for (method, path), success in CONTRACT.items():
        operation = schema["paths"][path][method]
        assert success in operation["responses"], (method, path)
        errors = [code for code in operation["responses"] if code.startswith("4")]
        # the public restaurant list has no error of its own; everything else declares some
        assert errors or path == "/api/v1/restaurants", (method, path)
        for code in errors:
            body = operation["responses"][code]["content"]["application/json"]["schema"]
            assert body == {"$ref": "#/components/schemas/ErrorOut"}
    assert schema["components"]["securitySchemes"]["BearerAuth"] == {"type": "http", "scheme": "bearer"}
    assert "security" not in schema["paths"]["/api/v1/auth/token"]["post"]
    assert schema["paths"]["/api/v1/orders"]["get"]["security"][0] == {"BearerAuth": []}
    order = schema["components"]["schemas"]["OrderOut"]
    contract_keys = {"id", "restaurant_id", "status", "version", "total", "items", "created_at", "timeline"}
    assert contract_keys <= set(order["required"])
    assert order["properties"]["total"]["type"] == "string"


def test_swagger_docs_page():
    response = Client().get("/api/v1/docs")

    assert response.status_code == 200
    assert b"openapi.json" in response.content


@pytest.mark.parametrize(
    ("method", "url", "status", "code"),
    [
        ("get", "/api/v1/nothing-here", 404, "not_found"),
        ("post", "/api/v1/nothing/here", 404, "not_found"),
        ("get", "/api/v1/", 404, "not_found"),
        ("get", "/api/v1/orders/abc", 404, "not_found"),
        # a line break anywhere, even at the end, is still under /api/v1/
        ("get", "/api/v1/orders%0A", 404, "not_found"),
        ("post", "/api/v1/orders%0A", 404, "not_found"),
        ("get", "/api/v1/orders%0D%0A", 404, "not_found"),
        ("get", "/api/v1/%0A", 404, "not_found"),
        ("get", "/api/v1/orders/1%0A", 404, "not_found"),
        ("get", "/api/v1/a%0Ab/c", 404, "not_found"),
        ("get", "/api/v1/%E2%80%A8", 404, "not_found"),
        ("delete", "/api/v1/orders", 405, "method_not_allowed"),
        ("get", "/api/v1/auth/token", 405, "method_not_allowed"),
        ("get", "/api/v1/wallet/top-up", 405, "method_not_allowed"),
        ("post", "/api/v1/wallet", 405, "method_not_allowed"),
    ],
)
def test_unknown_urls_and_methods_answer_in_the_error_shape(method, url, status, code):
    response = getattr(Client(enforce_csrf_checks=True), method)(url)

    assert response.status_code == status
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["error"]["code"] == code


JUNK_BODIES = [
    "",
    "{",
    "[]",
    "[{}]",
    '"text"',
    "123",
    "true",
    "null",
    "{}",
    '{"restaurant_id": {"nested": 1}, "items": "all", "delivery_address": 7, "to": [], "username": {}}',
    '{"restaurant_id": 1e400, "items": [[1, 2]], "delivery_address": null, "to": 1.5, "password": false}',
    '{"restaurant_id": -1, "items": [{"menu_item_id": -5, "quantity": 99999999999999999999999999}]}',
    '{"items": [null, 1, "a", {"menu_item_id": [], "quantity": {}}], "delivery_address": "\\u0000"}',
    '{"username": "\\ud800", "email": "\\udfff@x.io", "password": "x", "to": "\\ud800"}',
    '{"amount": "\\ud800", "card_number": "\\u0000"}',
    '{"amount": 1e400, "card_number": 4242424242424242}',
    '{"amount": "1' + "0" * 5000 + '", "card_number": "' + "4" * 5000 + '"}',
    "\u00e9t\u00e9",
]


@pytest.mark.parametrize("body", JUNK_BODIES)
def test_junk_never_causes_a_500(customer, body):
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})
    for url in (
        "/api/v1/auth/register",
        "/api/v1/auth/token",
        "/api/v1/orders",
        "/api/v1/orders/1/cancel",
        "/api/v1/kitchen/orders/1/transition",
        "/api/v1/wallet/top-up",
    ):
        for content_type in ("application/json", "text/plain", "application/x-www-form-urlencoded"):
            response = client.generic("POST", url, body.encode("utf-8", "surrogatepass"), content_type=content_type)

            assert 400 <= response.status_code < 500, (url, content_type, response.content)
            assert set(response.json()["error"]) >= {"code", "message"}


def test_a_body_over_the_upload_limit_is_413(customer, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})

    response = client.post("/api/v1/orders", {"delivery_address": "x" * 5000}, content_type="application/json")

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


# Every error an operation can answer is in its schema ---------------------------------------

# (method, path) -> the error statuses it can answer besides 401/403 of authentication.
OPERATIONS = {
    ("post", "/api/v1/auth/register"): {400, 409, 413, 415, 422},
    ("post", "/api/v1/auth/token"): {400, 401, 413, 415, 422},
    ("post", "/api/v1/auth/refresh"): {400, 401, 413, 415, 422},
    ("post", "/api/v1/auth/logout"): {401},
    ("get", "/api/v1/restaurants"): {422},
    ("get", "/api/v1/restaurants/{restaurant_id}/slots"): {404, 422},
    ("get", "/api/v1/restaurants/{restaurant_id}/menu"): {404},
    ("post", "/api/v1/orders"): {400, 409, 413, 415, 422},
    ("get", "/api/v1/orders"): set(),
    ("get", "/api/v1/orders/{order_id}"): {404},
    ("post", "/api/v1/orders/{order_id}/cancel"): {404, 409},
    ("get", "/api/v1/orders/{order_id}/receipt.pdf"): {404},
    ("post", "/api/v1/orders/{order_id}/card-payment"): {404, 422},
    ("get", "/api/v1/wallet"): set(),
    ("post", "/api/v1/wallet/top-up"): {400, 402, 409, 413, 415, 422},
    ("post", "/api/v1/wallet/top-ups"): {400, 409, 413, 415, 422},
    ("get", "/api/v1/wallet/top-ups/{top_up_id}"): {404},
    ("get", "/api/v1/kitchen/{restaurant_id}/orders"): {404},
    ("post", "/api/v1/kitchen/orders/{order_id}/transition"): {400, 404, 409, 413, 415, 422},
    ("post", "/api/v1/kitchen/orders/{order_id}/recall"): {404, 409},
    ("post", "/api/v1/kitchen/orders/{order_id}/priority"): {400, 404, 409, 413, 415, 422},
    ("post", "/api/v1/kitchen/orders/{order_id}/items/{menu_item_id}/done"): {400, 404, 409, 413, 415, 422},
    ("post", "/api/v1/kitchen/orders/{order_id}/lines/{line_id}/done"): {400, 404, 409, 413, 415, 422},
}
# (and the bearer-only logout, which can answer 401 but never 403)
PUBLIC = {
    ("post", "/api/v1/auth/register"),
    ("post", "/api/v1/auth/token"),
    ("post", "/api/v1/auth/refresh"),
    ("post", "/api/v1/auth/logout"),
    ("get", "/api/v1/restaurants"),
    ("get", "/api/v1/restaurants/{restaurant_id}/menu"),
    ("get", "/api/v1/restaurants/{restaurant_id}/slots"),
}


def _schema() -> dict:
    return Client().get("/api/v1/openapi.json").json()


def test_every_operation_lists_every_error_it_can_answer_in_the_error_shape():
    paths = _schema()["paths"]
    listed = {(method, path) for path, operations in paths.items() for method in operations}
    assert listed == set(OPERATIONS)
    for (method, path), statuses in OPERATIONS.items():
        responses = paths[path][method]["responses"]
        # 503 everywhere (every operation reads the database), 429 everywhere (every operation is
        # rate limited); 401/403 wherever a login is needed
        expected = statuses | {429, 503} | (set() if (method, path) in PUBLIC else {401, 403})
        errors = {int(code) for code in responses if int(code) >= 400}
        assert errors == expected, (method, path, sorted(errors))
        for code in errors:
            answer = responses[str(code)]
            assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorOut"}
            # each says which machine codes it carries
            assert "`" in answer["description"], (method, path, code, answer["description"])
        assert "Retry-After" in responses["503"]["headers"], (method, path)
        assert "Retry-After" in responses["429"]["headers"], (method, path)
        assert "`unavailable`" in responses["503"]["description"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/api/v1/auth/register", {"username": "", "email": "a@example.com", "password": "tasty-noodles-42"}),
        ("post", "/api/v1/auth/register", {"username": "nul\u0000", "email": "a@example.com", "password": "x"}),
        ("post", "/api/v1/auth/token", {"username": "nul\u0000", "password": "x"}),
        ("post", "/api/v1/orders", "another restaurant's dish"),
        ("post", "/api/v1/orders", "over the limit"),
        ("post", "/api/v1/wallet/top-up", {"amount": "0", "card_number": "4242424242424242"}),
        ("post", "/api/v1/wallet/top-up", {"amount": 5, "card_number": "4242424242424242"}),
        ("post", "/api/v1/kitchen/orders/{order_id}/transition", {"to": "eaten"}),
    ],
)
def test_the_business_422s_an_operation_answers_are_in_its_schema(customer, restaurant, menu, method, path, body):
    from decimal import Decimal

    from tests.factories import MenuItemFactory

    if body == "another restaurant's dish":
        body = {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": MenuItemFactory().pk, "quantity": 1}],
            "delivery_address": "1 Lane",
        }
    elif body == "over the limit":
        dish = MenuItemFactory(category__restaurant=restaurant, price=Decimal("9000.00"))
        body = {
            "restaurant_id": restaurant.pk,
            "items": [{"menu_item_id": dish.pk, "quantity": 2}],
            "delivery_address": "1 Lane",
        }
    client = Client(headers={"Authorization": f"Bearer {services.api_token_issue(user=customer)}"})

    response = client.post(path.replace("{order_id}", "1"), body, content_type="application/json")

    assert response.status_code == 422, response.content
    code = response.json()["error"]["code"]
    assert f"`{code}`" in _schema()["paths"][path][method]["responses"]["422"]["description"]
