"""Raw requests that try to smuggle, confuse framing or abuse the parser, with the answers due.

Each `FramingCase` is sent on its own connection and must be answered with a status in
`statuses` (`None`: closed without an answer). A refusal (any status but 200) must close the
connection, and the recording backend must not receive a single byte. A 200 (for requests that
are unusual but valid) means the backend got the request once, with exactly `body`, and without
any of the byte strings in `absent`. A `partial` case (a parser that only finds the error
while the body streams) may leave the backend with a head and a cut-short body, never a
complete request.
"""

from __future__ import annotations

from dataclasses import dataclass

HOST = b"Host: framing.test\r\n"
REFUSED = frozenset({400})


@dataclass(frozen=True)
class FramingCase:
    """One raw request and what the gateway owes it."""

    name: str
    raw: bytes
    statuses: frozenset[int | None] = REFUSED
    body: bytes = b""
    absent: tuple[bytes, ...] = ()
    partial: bool = False
    """A refusal may come after the head went upstream, but never with a complete body."""


def _post(*headers: bytes, body: bytes = b"") -> bytes:
    return b"POST /f HTTP/1.1\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n" + body


def _get(*headers: bytes, line: bytes = b"GET /f HTTP/1.1") -> bytes:
    return line + b"\r\n" + HOST + b"".join(h + b"\r\n" for h in headers) + b"\r\n"


def _refused(name: str, raw: bytes, *statuses: int | None) -> FramingCase:
    return FramingCase(name, raw, frozenset(statuses) if statuses else REFUSED)


def _valid(name: str, raw: bytes, body: bytes, *also: int) -> FramingCase:
    """A valid request: forwarded with `body`, or refused with one of `also` (a strict parser)."""
    return FramingCase(name, raw, frozenset({200, *also}), body)


CHUNKED = b"Transfer-Encoding: chunked"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\n" + HOST + b"\r\n"

CASES: list[FramingCase] = [
    # Content-Length together with Transfer-Encoding
    _refused("cl-and-te", _post(b"Content-Length: 5", CHUNKED, body=b"0\r\n\r\n")),
    _refused("te-and-cl", _post(CHUNKED, b"Content-Length: 5", body=b"0\r\n\r\n")),
    _refused(
        "cl-te-smuggled-pipeline",
        _post(b"Content-Length: 5", CHUNKED, body=b"0\r\n\r\n" + SMUGGLED),
    ),
    _refused(
        "te-cl-smuggled-pipeline",
        _post(CHUNKED, b"Content-Length: 40", body=b"0\r\n\r\n" + SMUGGLED),
    ),
    # duplicate or invalid Content-Length
    _refused(
        "cl-duplicate-differing", _post(b"Content-Length: 5", b"Content-Length: 6", body=b"hello!")
    ),
    _refused("cl-duplicate-same", _post(b"Content-Length: 5", b"Content-Length: 5", body=b"hello")),
    _refused("cl-list", _post(b"Content-Length: 5, 5", body=b"hello")),
    _refused("cl-plus", _post(b"Content-Length: +5", body=b"hello")),
    _refused("cl-hex", _post(b"Content-Length: 0x5", body=b"hello")),
    _refused("cl-negative", _post(b"Content-Length: -5", body=b"hello")),
    _refused("cl-inner-space", _post(b"Content-Length: 5 5", body=b"hello")),
    _refused("cl-empty", _post(b"Content-Length: ", body=b"hello")),
    _refused("cl-exponent", _post(b"Content-Length: 5e0", body=b"hello")),
    _refused("cl-underscore", _post(b"Content-Length: 1_0", body=b"helloworld")),
    _refused("cl-unicode-digit", _post("Content-Length: \u0665".encode(), body=b"hello")),
    _refused(
        "cl-overflow", _post(b"Content-Length: 99999999999999999999999999", body=b"hello"), 400, 413
    ),
    _refused("cl-space-before-colon", _post(b"Content-Length : 5", body=b"hello")),
    # obfuscated Transfer-Encoding
    _refused(
        "te-chunked-identity",
        _post(b"Transfer-Encoding: chunked, identity", body=b"0\r\n\r\n"),
        400,
        501,
    ),
    _refused("te-identity", _post(b"Transfer-Encoding: identity", body=b"0\r\n\r\n"), 400, 501),
    _refused("te-xchunked", _post(b"Transfer-Encoding: xchunked", body=b"0\r\n\r\n"), 400, 501),
    _refused("te-chunkedx", _post(b"Transfer-Encoding: chunkedx", body=b"0\r\n\r\n"), 400, 501),
    _refused(
        "te-gzip-chunked", _post(b"Transfer-Encoding: gzip, chunked", body=b"0\r\n\r\n"), 400, 501
    ),
    _refused(
        "te-chunked-chunked",
        _post(b"Transfer-Encoding: chunked, chunked", body=b"0\r\n\r\n"),
        400,
        501,
    ),
    _refused("te-twice", _post(CHUNKED, CHUNKED, body=b"0\r\n\r\n"), 400, 501),
    _refused("te-space-before-colon", _post(b"Transfer-Encoding : chunked", body=b"0\r\n\r\n")),
    _refused("te-tab-before-colon", _post(b"Transfer-Encoding\t: chunked", body=b"0\r\n\r\n")),
    _refused("te-vtab-value", _post(b"Transfer-Encoding:\x0bchunked", body=b"0\r\n\r\n"), 400, 501),
    _refused(
        "te-formfeed-value", _post(b"Transfer-Encoding:\x0cchunked", body=b"0\r\n\r\n"), 400, 501
    ),
    _refused("te-folded-line", _post(b"X-A: a", b" Transfer-Encoding: chunked", body=b"0\r\n\r\n")),
    _refused("te-folded-value", _post(b"Transfer-Encoding:", b" chunked", body=b"0\r\n\r\n")),
    FramingCase(  # dropped, never passed on: some backends read `_` as `-`
        "te-name-underscore",
        _post(b"Transfer_Encoding: chunked", b"Content-Length: 5", body=b"0\r\n\r\n"),
        frozenset({200, 400}),
        b"0\r\n\r\n",
        (b"Transfer_Encoding",),
    ),
    FramingCase(
        "cl-name-underscore",
        _post(b"Content_Length: 0", b"Content-Length: 5", body=b"hello"),
        frozenset({200, 400}),
        b"hello",
        (b"Content_Length",),
    ),
    _refused("te-http10", b"POST /f HTTP/1.0\r\n" + HOST + CHUNKED + b"\r\n\r\n0\r\n\r\n"),
    _refused(
        "te-http10-keep-alive",
        b"POST /f HTTP/1.0\r\n"
        + HOST
        + b"Connection: keep-alive\r\n"
        + CHUNKED
        + b"\r\n\r\n0\r\n\r\n",
    ),
    # invalid chunk sizes and extensions
    _refused("chunk-size-nonhex", _post(CHUNKED, body=b"zz\r\nhello\r\n0\r\n\r\n")),
    _refused("chunk-size-0x", _post(CHUNKED, body=b"0x5\r\nhello\r\n0\r\n\r\n")),
    _refused("chunk-size-negative", _post(CHUNKED, body=b"-5\r\nhello\r\n0\r\n\r\n")),
    _refused("chunk-size-plus", _post(CHUNKED, body=b"+5\r\nhello\r\n0\r\n\r\n")),
    FramingCase(  # the pure-Python parser waits for the 2**160-byte chunk: 408 on the stall
        "chunk-size-overflow",
        _post(CHUNKED, body=b"f" * 40 + b"\r\nhello\r\n0\r\n\r\n"),
        frozenset({400, 408, 413}),
        partial=True,
    ),
    _refused("chunk-size-space", _post(CHUNKED, body=b"5 5\r\nhello\r\n0\r\n\r\n")),
    _refused("chunk-missing-crlf", _post(CHUNKED, body=b"5\r\nhelloXX0\r\n\r\n")),
    _refused("chunk-bare-lf", _post(CHUNKED, body=b"5\nhello\n0\n\n")),
    _refused("chunk-data-bare-lf", _post(CHUNKED, body=b"5\r\nhello\n0\r\n\r\n")),
    # extensions are never passed on (the body is framed afresh): a lax parser may accept these
    _valid("chunk-ext-nul", _post(CHUNKED, body=b"5;a=\x00\r\nhello\r\n0\r\n\r\n"), b"hello", 400),
    _refused("chunk-ext-bare-lf", _post(CHUNKED, body=b"5;a\nb\r\nhello\r\n0\r\n\r\n")),
    _valid(
        "chunk-ext-bare-cr", _post(CHUNKED, body=b"5;a\rb\r\nhello\r\n0\r\n\r\n"), b"hello", 400
    ),
    # bare CR / LF, line folding, control characters
    _refused("bare-cr-request-line", b"GET /f HTTP/1.1\r" + HOST + b"\r\n"),
    _refused("bare-cr-header", b"GET /f HTTP/1.1\r\nX-A: a\rX-B: b\r\n" + HOST + b"\r\n"),
    _refused("bare-cr-header-end", b"GET /f HTTP/1.1\r\n" + HOST + b"X-A: a\r\r\n\r\n"),
    _refused("obs-fold", _get(b"X-A: a", b" b")),
    _refused("obs-fold-tab", _get(b"X-A: a", b"\tb")),
    _refused("first-header-folded", b"GET /f HTTP/1.1\r\n " + HOST + b"\r\n"),
    _refused("nul-in-value", _get(b"X-A: a\x00b")),
    _refused("nul-in-name", _get(b"X-\x00A: a")),
    _refused("ctl-in-value", _get(b"X-A: a\x01b")),
    _refused("del-in-value", _get(b"X-A: a\x7fb")),
    _refused("ctl-in-name", _get(b"X-\x01A: a")),
    _refused("space-in-name", _get(b"X A: a")),
    _refused("empty-name", _get(b": a")),
    _refused("no-colon", _get(b"X-A a")),
    _refused("nul-in-target", b"GET /f\x00 HTTP/1.1\r\n" + HOST + b"\r\n"),
    _refused("ctl-in-target", b"GET /f\x01 HTTP/1.1\r\n" + HOST + b"\r\n"),
    _refused("tab-in-request-line", b"GET\t/f HTTP/1.1\r\n" + HOST + b"\r\n"),
    _valid("double-space-request-line", b"GET  /f HTTP/1.1\r\n" + HOST + b"\r\n", b"", 400),
    _refused("bad-method-char", b"G(T /f HTTP/1.1\r\n" + HOST + b"\r\n"),
    # Host
    _refused("host-missing", b"GET /f HTTP/1.1\r\n\r\n"),
    _refused("host-duplicate", _get(b"Host: other.test")),
    _refused("host-space-before-colon", b"GET /f HTTP/1.1\r\nHost : framing.test\r\n\r\n"),
    # absolute-form and authority-form targets: never an open proxy
    _refused("absolute-form", _get(line=b"GET http://{victim}/f HTTP/1.1")),
    _refused("absolute-form-https", _get(line=b"GET https://{victim}/f HTTP/1.1")),
    _refused("absolute-form-userinfo", _get(line=b"GET http://framing.test@{victim}/f HTTP/1.1")),
    _refused("connect", _get(line=b"CONNECT {victim} HTTP/1.1"), 400, 405),
    _refused("asterisk-form", _get(line=b"OPTIONS * HTTP/1.1")),
    # versions
    _refused("http09", b"GET /f\r\n\r\n", 400, 505, None),
    _refused("http09-bare", b"GET /f\r\n", 400, 505, None),
    _refused("http09-with-host", b"GET /f\r\n" + HOST + b"\r\n", 400, 505, None),
    _refused("http2-version", _get(line=b"GET /f HTTP/2.0"), 400, 505),
    _refused("http-version-1-2", _get(line=b"GET /f HTTP/1.2"), 400, 505),
    _refused("http-version-garbage", _get(line=b"GET /f HTTP/1.x")),
    _refused("http-version-lower", _get(line=b"GET /f http/1.1")),
    # sizes (limits set in the corpus gateway's config: 1024 bytes, 20 fields)
    _refused("long-request-line", b"GET /" + b"a" * 3000 + b" HTTP/1.1\r\n" + HOST + b"\r\n", 414),
    _refused("long-header", _get(b"X-Big: " + b"v" * 3000), 431),
    _refused("many-headers", _get(*(b"X-H%d: v" % i for i in range(40))), 431),
    # valid but unusual: must be forwarded once with the right body
    _valid(
        "te-uppercase",
        _post(b"Transfer-Encoding: CHUNKED", body=b"5\r\nhello\r\n0\r\n\r\n"),
        b"hello",
    ),
    _valid(
        "te-tab-ows",
        _post(b"Transfer-Encoding:\tchunked\t", body=b"5\r\nhello\r\n0\r\n\r\n"),
        b"hello",
        400,
    ),
    _valid("cl-leading-zeros", _post(b"Content-Length: 0005", body=b"hello"), b"hello"),
    _valid("chunk-extension", _post(CHUNKED, body=b"5;name=value\r\nhello\r\n0\r\n\r\n"), b"hello"),
    _valid("chunk-trailer", _post(CHUNKED, body=b"5\r\nhello\r\n0\r\nX-T: 1\r\n\r\n"), b"hello"),
]
