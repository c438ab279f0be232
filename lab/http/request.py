"""Keys the core and the APIs' middlewares keep on an aiohttp request (request[...])."""
from aiohttp import web

# The route record matched (set when the lenient path retry matched a normalized path).
REQUEST_ROUTE = web.RequestKey("lab.http.route", object)
# Headers every answer to this request carries, errors included (request ids, versions).
REPLY_HEADERS = web.RequestKey("lab.http.reply_headers", dict)
# The path as the client sent it, when the router matched a normalized form of it.
PATH_AS_SENT = web.RequestKey("lab.http.path_as_sent", str)


def reply_headers(request) -> dict:
    """The request's reply-header dict: a middleware adds to it, the core applies it."""
    headers = request.get(REPLY_HEADERS)
    if headers is None:
        headers = request[REPLY_HEADERS] = {}
    return headers


def path_as_sent(request) -> str:
    return request.get(PATH_AS_SENT, request.path)
