"""HTTP answers of the bridge: errors, FTP reply codes mapped to statuses, safe paths."""

from __future__ import annotations

import posixpath
from urllib.parse import unquote

from kairos_ftp.client import FtpError, is_permission_error

_LOGIN_REFUSED = frozenset({530, 532, 331, 332})
_CREATING = frozenset({"STOR", "APPE", "MKD", "RMD", "RNFR", "RNTO"})


class BridgeError(Exception):
    """An HTTP error answer for the request."""

    def __init__(
        self, status: int, error_type: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}


def status_for(error: FtpError) -> BridgeError:
    """The HTTP error for an FTP refusal: 404, 403, 409, 507, 503 or 502."""
    reply = error.reply
    code = reply.code
    text = reply.text.strip()
    if code in _LOGIN_REFUSED:
        return BridgeError(502, "bad_gateway", "the FTP server refused the gateway's login")
    if is_permission_error(reply) or code == 553:
        return BridgeError(403, "forbidden", f"the FTP server refused: {text}")
    if code == 550:
        if error.command in _CREATING:
            return BridgeError(409, "conflict", f"the FTP server refused: {text}")
        return BridgeError(404, "not_found", "no such file or directory")
    if code in (452, 552):
        return BridgeError(507, "insufficient_storage", f"the FTP server is full: {text}")
    if code in (421, 450, 451):
        return BridgeError(503, "unavailable", f"the FTP server is busy: {text}")
    return BridgeError(502, "bad_gateway", f"the FTP server answered {code} {text}")


def ftp_path(root: str, request_path: str) -> str:
    """The FTP path for a (percent-encoded) request path; BridgeError on traversal tricks."""
    decoded = unquote(request_path)
    if any(c in decoded for c in "\r\n\0\\"):
        raise BridgeError(400, "invalid_path", "the path contains characters FTP cannot carry")
    segments = [s for s in decoded.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise BridgeError(400, "invalid_path", "'..' is not allowed in the path")
    return posixpath.join(root, *segments) if segments else root
