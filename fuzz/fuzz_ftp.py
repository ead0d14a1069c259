"""Fuzz target: FTP control-channel input: commands, PORT/EPRT, PASV/EPSV and multi-line replies."""

from __future__ import annotations

import asyncio

from kairos_ftp.addresses import (
    AddressError,
    parse_eprt_arg,
    parse_epsv_reply,
    parse_pasv_reply,
    parse_port_arg,
)
from kairos_ftp.channel import (
    MAX_LINE,
    ChannelClosed,
    ControlChannel,
    LineTooLong,
    ProtocolError,
    parse_command,
)
from kairos_ftp.client import parse_facts

_LOOP = asyncio.new_event_loop()


async def _replies(data: bytes) -> None:
    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    reader.feed_eof()
    channel = ControlChannel(reader, None)  # type: ignore[arg-type]
    try:
        while True:
            reply = await channel.read_reply()
            assert 0 <= reply.code <= 999
            reply.text  # noqa: B018 (decoding is part of what is fuzzed)
    except (ChannelClosed, ProtocolError, LineTooLong):
        return


def test_one_input(data: bytes) -> None:
    """Every parser returns a value or raises the plugin's own error."""
    command = parse_command(data)
    for parse in (parse_port_arg, parse_eprt_arg, parse_pasv_reply):
        try:
            _ip, port = parse(command.arg)
            assert 0 <= port <= 65535
        except AddressError:
            pass
    try:
        parse_epsv_reply(data)
    except AddressError:
        pass
    parse_facts(data.decode("utf-8", "replace"))
    _LOOP.run_until_complete(_replies(data))
