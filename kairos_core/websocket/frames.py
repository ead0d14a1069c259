"""Reading WebSocket frame headers off a byte stream (payloads pass through untouched)."""

from __future__ import annotations

import os
import struct

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class FrameScanner:
    """Tracks frame boundaries in one direction: messages, their sizes, and close frames.

    `feed(data)` returns how many leading bytes of `data` may be forwarded: all of them, unless
    a message would exceed `max_message` (then `too_big` is set and forwarding stops before
    that frame). Close frame payloads (at most 125 bytes) are decoded into `close_code` and
    `close_reason`.
    """

    __slots__ = (
        "_control",
        "_header",
        "_in_message",
        "_mask",
        "_message_size",
        "_opcode",
        "_remaining",
        "bytes",
        "close_code",
        "close_reason",
        "closed",
        "max_message",
        "messages",
        "too_big",
    )

    def __init__(self, max_message: int) -> None:
        self.max_message = max_message
        self._header = b""
        self._remaining = 0
        self._opcode = 0
        self._mask = b""
        self._control = bytearray()
        self._in_message = False
        self._message_size = 0
        self.messages = 0
        self.bytes = 0
        self.closed = False
        self.close_code: int | None = None
        self.close_reason = b""
        self.too_big = False

    def feed(self, data: bytes) -> int:
        """Account for `data`; return the number of bytes that may be forwarded."""
        position = 0
        size = len(data)
        while position < size:
            if self._remaining:
                step = min(self._remaining, size - position)
                if self._opcode >= CLOSE:
                    self._control += data[position : position + step]
                position += step
                self._remaining -= step
                if not self._remaining:
                    self._frame_done()
                continue
            header = self._header + data[position : position + 14]
            parsed = _parse_header(header)
            if parsed is None:  # the header is split across reads
                self._header = header
                return size
            fin, opcode, masked, length, header_size = parsed
            position += header_size - len(self._header)
            self._header = b""
            if opcode < CLOSE:
                self._message_size += length
                if self._message_size > self.max_message:
                    self.too_big = True
                    return max(0, position - header_size)
                self._in_message = not fin
                if fin:
                    self.messages += 1
                    self.bytes += self._message_size
                    self._message_size = 0
            self._opcode = opcode
            self._mask = header[header_size - 4 : header_size] if masked else b""
            self._control = bytearray()
            self._remaining = length
            if not length:
                self._frame_done()
        return size

    def _frame_done(self) -> None:
        if self._opcode != CLOSE:
            return
        payload = bytes(self._control)
        if self._mask:
            payload = _unmask(payload, self._mask)
        self.closed = True
        if len(payload) >= 2:
            self.close_code = struct.unpack("!H", payload[:2])[0]
            self.close_reason = payload[2:]


def _parse_header(header: bytes) -> tuple[bool, int, bool, int, int] | None:
    if len(header) < 2:
        return None
    first, second = header[0], header[1]
    masked = bool(second & 0x80)
    length = second & 0x7F
    size = 2
    if length == 126:
        if len(header) < 4:
            return None
        length = struct.unpack("!H", header[2:4])[0]
        size = 4
    elif length == 127:
        if len(header) < 10:
            return None
        length = struct.unpack("!Q", header[2:10])[0]
        size = 10
    if masked:
        size += 4
    if len(header) < size:
        return None
    return bool(first & 0x80), first & 0x0F, masked, length, size


def _unmask(payload: bytes, mask: bytes) -> bytes:
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def close_frame(code: int, reason: bytes = b"", masked: bool = False) -> bytes:
    """A complete close frame (masked when the gateway sends it to a backend)."""
    payload = struct.pack("!H", code) + reason[:123]
    if not masked:
        return bytes((0x80 | CLOSE, len(payload))) + payload
    mask = os.urandom(4)
    return bytes((0x80 | CLOSE, 0x80 | len(payload))) + mask + _unmask(payload, mask)
