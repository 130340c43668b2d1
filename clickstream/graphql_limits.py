"""The sizes a GraphQL request is held to. Apart from ``clickstream.graphql`` so that the
OpenAPI document, which states them, does not load ariadne and graphql-core."""

from __future__ import annotations

MAX_QUERY_BYTES = 16 * 1024
MAX_BODY_BYTES = 64 * 1024  # the query and its variables
# GET is for simple queries: URLs past ~8 KB are refused by API Gateway (414) before us.
MAX_GET_QUERY_BYTES = 2 * 1024
