"""Header names the hot path uses, as multidict `istr`: looked up without lower-casing each time."""

from __future__ import annotations

from multidict import istr

CONNECTION = istr("Connection")
CONTENT_LENGTH = istr("Content-Length")
DATE = istr("Date")
EXPECT = istr("Expect")
FORWARDED = istr("Forwarded")
HOST = istr("Host")
SERVER = istr("Server")
TRACEPARENT = istr("traceparent")
X_FORWARDED_FOR = istr("X-Forwarded-For")
X_FORWARDED_HOST = istr("X-Forwarded-Host")
X_FORWARDED_PROTO = istr("X-Forwarded-Proto")
