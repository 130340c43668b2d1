"""The one error a request is refused with: the field at fault (a parameter, header, body
member or limit), what is wrong with it, and the HTTP status (400 unless said). Nothing is
done for a refused request; the API answers it in one place. Also the one test of a write
DynamoDB refused on its condition (the store, the jobs and the keys each expect it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from botocore.exceptions import ClientError


def conditional_check_failed(exc: ClientError) -> bool:
    return bool(exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException")


class RequestError(ValueError):
    """A request refused: ``status`` (400, 401, 403, 404, 413, 415), ``field`` and
    ``message``; the message never repeats a key."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.status = status

    @property
    def headers(self) -> dict[str, str]:
        """A 401 names the scheme that proves who is calling."""
        if self.status != 401:
            return {}
        if self.field == "Authorization":
            return {"WWW-Authenticate": 'Bearer realm="clickstream"'}
        return {"WWW-Authenticate": f'ApiKey realm="clickstream", header="{self.field}"'}
