"""The error answers handlers raise; the app's middleware renders them."""

from __future__ import annotations

from aiohttp import web


class ApiError(Exception):
    """An error answer in the shape of the API that raised it."""

    def response(self) -> web.Response:
        raise NotImplementedError
