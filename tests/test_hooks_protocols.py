"""register_protocol_handlers: a plugin listener is started with the gateway and closed with it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict

from kairos_core import GatewayServices, ProtocolPlugin, hookimpl
from kairos_core.config import ConfigError
from kairos_core.config.models import ListenerConfig
from kairos_core.testing import running_gateway


class LineEchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    prefix: str = "> "


class LineEchoService:
    """A TCP server answering each line with `prefix + line`."""

    def __init__(self, server: asyncio.Server, workers: int) -> None:
        self.server = server
        self.port = server.sockets[0].getsockname()[1]
        self.workers = workers

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_line_echo(
    listener: ListenerConfig, config: LineEchoConfig, services: GatewayServices
) -> LineEchoService:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            writer.write(config.prefix.encode() + line)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, listener.host, listener.port)
    return LineEchoService(server, services.workers)


class ProtocolProbe:
    @hookimpl
    def register_protocol_handlers(self, register: Callable[[ProtocolPlugin[Any]], None]) -> None:
        register(
            ProtocolPlugin(name="line-echo", start=start_line_echo, config_model=LineEchoConfig)
        )


def gateway_config(echo_url: str) -> dict[str, Any]:
    """An HTTP listener and a `line-echo` listener, both on free ports."""
    return {
        "listeners": [
            {"host": "127.0.0.1", "port": 0},
            {"protocol": "line-echo", "host": "127.0.0.1", "port": 0, "config": {"prefix": "< "}},
        ],
        "routes": [{"prefix": "/", "upstream": {"backends": [{"url": echo_url}]}}],
    }


async def test_protocol_listener_serves_and_closes_with_the_gateway(echo_backend, http):
    async with running_gateway(gateway_config(echo_backend.url), [ProtocolProbe()]) as gw:
        [(listener, service)] = gw.gateway.services
        assert listener.protocol == "line-echo"
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        writer.write(b"ping\n")
        assert await reader.readline() == b"< ping\n"
        writer.close()
        async with http.get(gw.url + "/") as response:  # HTTP keeps working beside it
            assert response.status == 200
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", service.port)


async def test_unknown_protocol_is_a_clear_error(kairos_gateway, echo_backend):
    config = gateway_config(echo_backend.url)
    config["listeners"][1]["protocol"] = "line-echoes"
    with pytest.raises(ConfigError, match=r"listeners\[1\]\.protocol: plugin 'line-echoes' is not"):
        await kairos_gateway(config, plugins=[ProtocolProbe()])


async def test_protocol_settings_are_validated_with_the_config(kairos_gateway, echo_backend):
    config = gateway_config(echo_backend.url)
    config["listeners"][1]["config"] = {"prefix": "< ", "bogus": 1}
    with pytest.raises(ConfigError, match=r"listeners\[1\]\.config\.bogus: unknown field"):
        await kairos_gateway(config, plugins=[ProtocolProbe()])


class PoolEchoConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upstream: str


def prepare_pool_echo(
    listener: ListenerConfig, config: PoolEchoConfig, services: GatewayServices
) -> None:
    """Checks the named pool at build time and leaves its first backend for `start`."""
    pool = services.pools.get(config.upstream)
    if pool is None:
        raise ValueError(f"upstream {config.upstream!r} is not defined")
    services.shared["pool-echo"] = pool.backends[0].url


async def start_pool_echo(
    listener: ListenerConfig, config: PoolEchoConfig, services: GatewayServices
) -> LineEchoService:
    prepared = services.shared["pool-echo"]

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(prepared.encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, listener.host, listener.port)
    return LineEchoService(server, services.workers)


class PreparedProtocolProbe:
    @hookimpl
    def register_protocol_handlers(self, register: Callable[[ProtocolPlugin[Any]], None]) -> None:
        register(
            ProtocolPlugin(
                name="pool-echo",
                start=start_pool_echo,
                config_model=PoolEchoConfig,
                prepare=prepare_pool_echo,
            )
        )


def pool_echo_config(echo_url: str, upstream: str) -> dict[str, Any]:
    """A `pool-echo` listener naming `upstream`, beside an HTTP listener."""
    return {
        "listeners": [
            {"host": "127.0.0.1", "port": 0},
            {"protocol": "pool-echo", "port": 0, "config": {"upstream": upstream}},
        ],
        "upstreams": {"echo": {"backends": [{"url": echo_url}]}},
        "routes": [{"prefix": "/", "upstream": "echo"}],
    }


async def test_prepare_runs_at_build_time_before_start(echo_backend):
    config = pool_echo_config(echo_backend.url, "echo")
    async with running_gateway(config, [PreparedProtocolProbe()]) as gw:
        [(_listener, service)] = gw.gateway.services
        reader, writer = await asyncio.open_connection("127.0.0.1", service.port)
        assert (await reader.readline()).decode().strip() == echo_backend.url
        writer.close()


async def test_prepare_errors_point_at_the_listener_config(kairos_gateway, echo_backend):
    config = pool_echo_config(echo_backend.url, "missing")
    with pytest.raises(ConfigError, match=r"listeners\[1\]\.config: upstream 'missing' is not"):
        await kairos_gateway(config, plugins=[PreparedProtocolProbe()])
