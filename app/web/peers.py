"""Peers: the other workers of the group, and asking each of them for its own part of a view."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

if TYPE_CHECKING:
    from app.txapp import TxApp

__all__ = ["PEER_TIMEOUT", "fetch_local_parts", "peer_headers", "peer_urls"]

#: How long one peer may take to answer before its partitions count as missing.
PEER_TIMEOUT = 3.0


def _ident(url: URL) -> tuple[str, int]:
    return (url.host or "", url.port or 80)


def peer_urls(app: TxApp) -> list[URL]:
    """Web URLs of the other workers that own partitions of the source topic.

    From the partition assignor's metadata (``app.router.external_topics_metadata()``),
    which every member receives from the group leader at each rebalance.
    """
    try:
        metadata = app.router.external_topics_metadata()
    except Exception:  # no assignment yet
        return []
    source = app.topic_names.transactions
    own = _ident(URL(str(app.conf.canonical_url)))
    urls = {URL(url) for url, topics in metadata.items() if topics.get(source)}
    return sorted((url for url in urls if _ident(url) != own), key=str)


def peer_headers(app: TxApp) -> dict[str, str]:
    """What a request to another worker carries: the web token, when there is one.

    Every worker of a group has the same token, so each accepts the others' requests.
    """
    token = app.settings.web_token
    return {} if token is None else {"Authorization": f"Bearer {token.get_secret_value()}"}


async def _fetch(app: TxApp, url: URL, path: str) -> dict[str, Any]:
    target = url.with_path(path).with_query(local="1")
    timeout = aiohttp.ClientTimeout(total=PEER_TIMEOUT)
    async with app.http_client.get(target, timeout=timeout,
                                   headers=peer_headers(app)) as response:
        if response.status != 200:
            message = f"HTTP {response.status}"
            raise RuntimeError(message)
        part: dict[str, Any] = await response.json()
        return part


async def fetch_local_parts(
        app: TxApp, path: str) -> list[tuple[URL, dict[str, Any] | BaseException]]:
    """``GET path?local=1`` from every peer at once: its answer, or the error it gave."""
    peers = peer_urls(app)
    answers = await asyncio.gather(*(_fetch(app, url, path) for url in peers),
                                   return_exceptions=True)
    return list(zip(peers, answers, strict=True))
