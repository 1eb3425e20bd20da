"""``HttpApplication``: the application of a MindFu server reached over its REST API."""

from __future__ import annotations

from typing import Any

import httpx

from mindfu_core.application import Health
from mindfu_http.client import parse
from mindfu_http.client.chat import HttpChat
from mindfu_http.client.keys import HttpKeys
from mindfu_http.client.resources import (
    Defaults,
    HttpConversations,
    HttpDocuments,
    HttpEmbeddings,
    HttpRetrieval,
    HttpTraining,
)
from mindfu_http.client.transport import Transport


class HttpApplication:
    """``mindfu_core.application.Application`` over HTTP; errors come back as the domain errors the server
    raised (its OpenAI error objects mapped back), an unreachable server as ``UpstreamUnavailable``."""

    def __init__(self, transport: Transport, defaults: Defaults) -> None:
        self._http = transport
        self.chat = HttpChat(transport)
        self.documents = HttpDocuments(transport, defaults)
        self.retrieval = HttpRetrieval(transport, defaults)
        self.embeddings = HttpEmbeddings(transport)
        self.conversations = HttpConversations(transport)
        self.training = HttpTraining(transport)
        self.keys = HttpKeys(transport)

    async def health(self) -> Health:
        """``GET /health/ready``: ready, and the server's detail (engines, queues, its core)."""
        try:
            response = await self._http.call_raw("GET", "/health/ready")
        except httpx.HTTPError as exc:
            return Health(ready=False, detail={"server": {"address": self._http.url, "error": str(exc)}})
        body: dict[str, Any] = response.json() if response.content else {}
        status = body.pop("status", None)
        return Health(ready=response.status_code == 200 and status == "ready", detail=body)

    async def aclose(self) -> None:
        await self._http.aclose()


async def connect(
    url: str,
    *,
    api_key: str | None = None,
    request_timeout: float = 600.0,
    client: httpx.AsyncClient | None = None,
) -> HttpApplication:
    """The application of the MindFu server at ``url`` (its defaults read once, which also checks the key)."""
    transport = Transport(url, api_key=api_key, timeout=request_timeout, client=client)
    try:
        found = await transport.json("GET", "/v1/documents/defaults")
    except BaseException:
        await transport.aclose()
        raise
    retrieval, policy = parse.defaults_of(found)
    return HttpApplication(transport, Defaults(retrieval, policy))
