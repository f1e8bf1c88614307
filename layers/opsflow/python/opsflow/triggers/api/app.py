"""The API's resolver: validation from types, each area's routes, the error answers and the OpenAPI
document. The handler in functions/api resolves events with it."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from opsflow.triggers.api import accounts, ci, environments, errors, openapi, remediations, runs

app = APIGatewayRestResolver(enable_validation=True)
# The order the routes are included in is the order the OpenAPI document lists them.
app.include_router(runs.router)
app.include_router(environments.router)
app.include_router(accounts.router)
app.include_router(remediations.router)
app.include_router(ci.router)
app.include_router(errors.router)
app.include_router(openapi.router)


def openapi_document() -> str:
    return openapi.openapi_document(app)
