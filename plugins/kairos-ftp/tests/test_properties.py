"""FTP parser properties: any input gives a value or the plugin's own error; values round-trip."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from kairos_ftp.addresses import (
    AddressError,
    epsv_reply_text,
    format_eprt_arg,
    format_port_arg,
    parse_eprt_arg,
    parse_epsv_reply,
    parse_pasv_reply,
    parse_port_arg,
    pasv_reply_text,
    same_host,
)
from kairos_ftp.channel import (
    MAX_LINE,
    ChannelClosed,
    ControlChannel,
    LineTooLong,
    ProtocolError,
    Reply,
    make_reply,
    parse_command,
    strip_telnet,
)
from kairos_ftp.client import parse_facts

from kairos_core.testing.properties import bounded

BOUNDED = bounded(300)
FTPISH = st.binary(max_size=60) | st.text("0123456789,|()!. \r\n:abcdef-", max_size=60).map(
    str.encode
)
IPV4 = st.ip_addresses(v=4).map(str)
IPS = st.ip_addresses().map(str)
PORTS = st.integers(1, 65535)


@BOUNDED
@given(FTPISH)
@example(b"1,2,3,4,5,6")
@example(b"|2|::1|21|")
@example(b"|1|1.2.3.4|0|")
@example(b"(|||65536|)")
@example(b"Entering Passive Mode (256,0,0,1,0,1)")
def test_address_parsers_return_a_value_or_an_address_error(data: bytes) -> None:
    for parse in (parse_port_arg, parse_eprt_arg, parse_pasv_reply):
        try:
            ip, port = parse(data)
        except AddressError:
            continue
        ipaddress.ip_address(ip.split("%")[0])
        assert 0 <= port <= 65535
    with contextlib.suppress(AddressError):
        assert 0 < parse_epsv_reply(data) <= 65535


@BOUNDED
@given(IPV4, st.integers(0, 65535))
def test_port_and_pasv_round_trip(ip: str, port: int) -> None:
    assert parse_port_arg(format_port_arg(ip, port).encode()) == (ip, port)
    assert parse_pasv_reply(b"227 " + pasv_reply_text(ip, port).encode()) == (ip, port)


@BOUNDED
@given(IPS, PORTS)
def test_eprt_and_epsv_round_trip(ip: str, port: int) -> None:
    parsed_ip, parsed_port = parse_eprt_arg(format_eprt_arg(ip, port).encode())
    assert same_host(parsed_ip, ip)
    assert parsed_port == port
    assert parse_epsv_reply(b"229 " + epsv_reply_text(port).encode()) == port


@BOUNDED
@given(st.binary(max_size=80))
@example(b"\xff\xf4\xff\xf2ABOR\r\n")
@example(b"RETR \xff")
def test_any_command_line_parses(raw: bytes) -> None:
    command = parse_command(raw)
    assert command.verb == command.verb.upper()
    assert not command.line.endswith(b"\n")
    assert command.text.encode("utf-8", "surrogateescape") == command.arg


@BOUNDED
@given(st.binary(max_size=40).filter(lambda b: 0xFF not in b and b"\n" not in b))
def test_telnet_free_lines_are_unchanged(line: bytes) -> None:
    assert strip_telnet(line) == line
    _verb, _, arg = line.partition(b" ")
    assert parse_command(line + b"\r\n").arg == arg


async def read_replies(data: bytes) -> list[Reply]:
    """Every reply a control channel reads from `data`, until it stops with its own error."""
    reader = asyncio.StreamReader(limit=MAX_LINE)
    reader.feed_data(data)
    reader.feed_eof()
    channel = ControlChannel(reader, None)  # type: ignore[arg-type]
    replies = []
    try:
        while True:
            replies.append(await channel.read_reply())
    except (ChannelClosed, ProtocolError, LineTooLong):
        return replies


@pytest.fixture(scope="module")
def loop() -> asyncio.AbstractEventLoop:
    """One event loop for all examples (a new loop per example would dominate the run time)."""
    loop = asyncio.new_event_loop()
    yield loop  # type: ignore[misc]
    loop.close()


@BOUNDED
@given(
    data=st.binary(max_size=200)
    | st.lists(
        st.sampled_from([b"220 hi\r\n", b"220-a\r\n", b" b\r\n", b"220 end\r\n", b"220\r\n"])
        | st.sampled_from([b"150-x\n", b"150 y\n", b"99 no\r\n", b"abc\r\n", b"\r\n"]),
        max_size=8,
    ).map(b"".join)
)
@example(data=b"211-Features:\r\n MLST size*;\r\n211 End\r\n")
def test_any_reply_stream_reads_as_replies_or_a_channel_error(
    loop: asyncio.AbstractEventLoop, data: bytes
) -> None:
    replies = loop.run_until_complete(read_replies(data))
    consumed = b"".join(reply.raw for reply in replies)
    assert data.startswith(consumed)
    for reply in replies:
        assert 0 <= reply.code <= 999
        assert reply.raw[:3] == str(reply.code).zfill(3).encode()
        assert isinstance(reply.text, str)


@BOUNDED
@given(st.integers(100, 599), st.lists(st.text(st.characters(blacklist_characters="\r\n"))))
def test_gateway_replies_read_back_as_sent(
    loop: asyncio.AbstractEventLoop, code: int, lines: list[str]
) -> None:
    text = "\n".join(lines) if lines else "ok"
    [reply] = loop.run_until_complete(read_replies(make_reply(code, text)))
    assert reply.code == code
    assert len(reply.lines) == len(text.split("\n"))
    if len(reply.lines) == 1:
        assert reply.text == text
    else:
        assert reply.lines[-1] == f"{code} {lines[-1]}\r\n".encode()


@BOUNDED
@given(st.text(max_size=80))
@example("size=²; x")  # str.isdigit() accepts "²", int() does not: ValueError before the fix
@example("modify=²²²²²²²²²²²²²²;type=file; f")
def test_mlsx_facts_parse_whatever_the_server_says(line: str) -> None:
    facts = parse_facts(line)
    assert facts.size is None or facts.size >= 0
    assert facts.modified is None or facts.modified.tzinfo is not None
    assert facts.type == facts.type.lower()
