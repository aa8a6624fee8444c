"""Our clients as peers: one helper that sends messages with any adapter's ``Client``.

Flavours: ``asyncio`` (transports.asyncio), ``anyio-asyncio`` and ``anyio-trio``
(transports.anyio on each backend), ``threads`` and ``sockets`` (the blocking clients). Each
delivery opens one connection, sends every message on it (PIPELINING, CHUNKING, SMTPUTF8, 8BITMIME
and DSN used as offered, per issue 5), and QUITs.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from esmtp_core import ClientConfig, DsnNotify, DsnReturn

#: Every client flavour the interop tests run.
CLIENT_FLAVOURS = ("asyncio", "anyio-asyncio", "anyio-trio", "threads", "sockets")


@dataclass(frozen=True)
class Outgoing:
    """One message to send: exact bytes and envelope, plus optional DSN requests (RFC 3461)."""

    data: bytes
    sender: str
    recipients: tuple[str, ...]
    dsn_notify: tuple[DsnNotify, ...] | None = None
    dsn_return: DsnReturn | None = None
    envid: str | None = None


@dataclass
class Delivery:
    """What one session did: a send result per message and what the session looked like."""

    results: list[Any] = field(default_factory=list)
    capabilities: Any = None
    tls_active: bool = False


def deliver(
    flavour: str,
    port: int,
    messages: Sequence[Outgoing],
    *,
    host: str = "127.0.0.1",
    tls: str | None = None,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    config: ClientConfig | None = None,
    timeout: float = 30.0,
) -> Delivery:
    """Send ``messages`` over one connection with the ``flavour`` client; see module docstring.

    ``tls`` is the client's mode (``"starttls"`` required, ``"implicit"``, None). Raises whatever
    the client raises (its typed :mod:`transports.errors`), so a refusal fails the test loudly.
    """
    options: dict[str, Any] = {
        "local_hostname": "client.test",
        "tls": tls,
        "ssl_context": ssl_context,
        "server_hostname": server_hostname,
        "timeout": timeout,
        "config": config,
    }
    if flavour in ("threads", "sockets"):
        return _deliver_sync(flavour, host, port, messages, options)
    if flavour == "asyncio":
        return asyncio.run(_deliver_async(flavour, host, port, messages, options))
    if flavour in ("anyio-asyncio", "anyio-trio"):
        import anyio  # noqa: PLC0415 - optional dependency, as in the adapter itself

        backend = flavour.split("-", 1)[1]

        async def main() -> Delivery:
            return await _deliver_async(flavour, host, port, messages, options)

        result: Delivery = anyio.run(main, backend=backend)
        return result
    raise ValueError(f"unknown client flavour {flavour!r}")


def _send_kwargs(item: Outgoing) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if item.dsn_notify is not None:
        kwargs["dsn_notify"] = item.dsn_notify
    if item.dsn_return is not None:
        kwargs["dsn_return"] = item.dsn_return
    if item.envid is not None:
        kwargs["envid"] = item.envid
    return kwargs


def _deliver_sync(
    flavour: str, host: str, port: int, messages: Sequence[Outgoing], options: dict[str, Any]
) -> Delivery:
    if flavour == "threads":
        from transports.threads import Client  # noqa: PLC0415
    else:
        from transports.sockets import Client  # noqa: PLC0415
    delivery = Delivery()
    with Client(host, port, **options) as client:
        for item in messages:
            delivery.results.append(
                client.send_message(
                    item.data, item.sender, list(item.recipients), **_send_kwargs(item)
                )
            )
        delivery.capabilities = client.capabilities
        delivery.tls_active = client.tls_active
    return delivery


async def _deliver_async(
    flavour: str, host: str, port: int, messages: Sequence[Outgoing], options: dict[str, Any]
) -> Delivery:
    if flavour == "asyncio":
        from transports.asyncio import Client  # noqa: PLC0415
    else:
        from transports.anyio import Client  # type: ignore[assignment]  # noqa: PLC0415
    delivery = Delivery()
    async with Client(host, port, **options) as client:
        for item in messages:
            delivery.results.append(
                await client.send_message(
                    item.data, item.sender, list(item.recipients), **_send_kwargs(item)
                )
            )
        delivery.capabilities = client.capabilities
        delivery.tls_active = client.tls_active
    return delivery
