"""The JSON API of CONTRACT.md (placeholder until the API is built)."""

from ninja import NinjaAPI

api = NinjaAPI(title="Passline API", version="1", openapi_url="/openapi.json", docs_url="/docs")
