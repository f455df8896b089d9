"""The API's OpenAPI spec (both providers, committed beside this file) and Swagger UI with no CDN."""

from functools import cache
from pathlib import Path

import aws_lambda_powertools.event_handler as event_handler
from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from sharelink.api import create_app
from sharelink.observability import logger

SPEC = (Path(__file__).parent / "openapi.json").read_text()
ASSETS = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"


@cache
def page() -> str:
    """Powertools ships Swagger UI's script and styles; inlined, the page needs nothing from the internet. Built on
    the first request for it: reading 1.4 MB of script is not worth a cold start that only serves the spec."""
    from aws_lambda_powertools.event_handler.openapi.swagger_ui.html import generate_swagger_html

    return generate_swagger_html(
        SPEC.replace("</", "<\\/"),
        (ASSETS / "swagger-ui-bundle.min.js").read_text(),
        (ASSETS / "swagger-ui.min.css").read_text(),
        swagger_base_url="",  # empty: inline the assets above
        oauth2_config=None,
        persist_authorization=False,
    )


app = create_app()


@app.get("/v1/openapi.json", include_in_schema=False)
def openapi_spec() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=SPEC)


@app.get("/v1/docs", include_in_schema=False)
def swagger_ui() -> Response[str]:
    if app.current_event.get_query_string_value("format") == "json":  # the page's own link to its spec
        return openapi_spec()
    return Response(status_code=200, content_type="text/html; charset=utf-8", body=page())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(event, context)
