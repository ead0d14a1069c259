"""The HTTP bridge: GET (ranges, listings), HEAD, PUT, DELETE against a real FTP server."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import kairos_ftp
import pytest
from ftp_testkit import PASSWORD, USER, FtpServer, HelperPlugins, random_file

from kairos_core.testing import RunningGateway

AUTH = {"Authorization": "Token bob"}


def bridge_config(server: FtpServer | str, **bridge: Any) -> dict[str, Any]:
    """A gateway with `/files/...` served from the FTP pool behind test auth and a budget."""
    url = server if isinstance(server, str) else server.url
    settings = {"username": USER, "password": PASSWORD, **bridge}
    return {
        "upstreams": {"ftp-files": {"backends": [{"url": url}]}},
        "routes": [
            {
                "name": "files",
                "prefix": "/files",
                "strip_prefix": True,
                "upstream": "ftp-files",
                "max_body_size": "20MB",
                "plugins": [
                    {"name": "test-token"},
                    {"name": "test-budget", "config": {"budget": 1000}},
                    {"name": "ftp-bridge", "config": settings},
                ],
            }
        ],
    }


@pytest.fixture
async def bridge(kairos_gateway: Any, ftp_server: FtpServer) -> RunningGateway:
    gateway: RunningGateway = await kairos_gateway(
        bridge_config(ftp_server), plugins=[kairos_ftp, HelperPlugins()]
    )
    return gateway


@pytest.fixture
def files(ftp_root: Path) -> Path:
    (ftp_root / "docs").mkdir()
    (ftp_root / "docs" / "hello.txt").write_bytes(b"hello, world\n")
    (ftp_root / "docs" / "empty").mkdir()
    (ftp_root / "data.bin").write_bytes(bytes(range(256)) * 4)
    return ftp_root


async def test_get_streams_a_file_with_its_metadata(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    digest = random_file(files / "big.bin", 6 * 1024 * 1024 + 5)
    async with http.get(f"{bridge.url}/files/docs/hello.txt", headers=AUTH) as response:
        assert response.status == 200
        assert await response.read() == b"hello, world\n"
        assert response.headers["Content-Length"] == "13"
        assert response.headers["Content-Type"].startswith("text/plain")
        assert response.headers["Accept-Ranges"] == "bytes"
        assert response.headers["Last-Modified"].endswith("GMT")
        assert response.headers["ETag"].startswith('"d-')
    async with http.get(f"{bridge.url}/files/big.bin", headers=AUTH) as response:
        assert response.status == 200
        hasher = hashlib.sha256()
        async for chunk in response.content.iter_chunked(1 << 16):
            hasher.update(chunk)
    assert hasher.hexdigest() == digest


@pytest.mark.parametrize(
    ("header", "status", "expected", "content_range"),
    [
        ("bytes=10-19", 206, bytes(range(10, 20)), "bytes 10-19/1024"),
        ("bytes=1020-", 206, bytes(range(252, 256)), "bytes 1020-1023/1024"),
        ("bytes=-3", 206, bytes(range(253, 256)), "bytes 1021-1023/1024"),
        ("bytes=1000-5000", 206, (bytes(range(256)) * 4)[1000:], "bytes 1000-1023/1024"),
        ("bytes=0-1,5-6", 200, bytes(range(256)) * 4, None),  # multi-range: the whole file
        ("bytes=2000-", 416, None, "bytes */1024"),
    ],
)
async def test_range_requests(
    bridge: RunningGateway,
    http: aiohttp.ClientSession,
    files: Path,
    header: str,
    status: int,
    expected: bytes | None,
    content_range: str | None,
) -> None:
    async with http.get(
        f"{bridge.url}/files/data.bin", headers={**AUTH, "Range": header}
    ) as response:
        body = await response.read()
        assert response.status == status
        assert response.headers.get("Content-Range") == content_range
        if expected is not None:
            assert body == expected
            assert response.headers["Content-Length"] == str(len(expected))


async def test_directory_listing_is_json(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    async with http.get(f"{bridge.url}/files/docs/", headers=AUTH) as response:
        assert response.status == 200
        listing = await response.json()
    assert listing["path"] == "/files/docs/"
    names = {entry["name"]: entry for entry in listing["entries"]}
    assert names["hello.txt"]["type"] == "file" and names["hello.txt"]["size"] == 13
    assert names["hello.txt"]["modified"].endswith("Z")
    assert names["empty"]["type"] == "dir" and "size" not in names["empty"]
    async with http.get(f"{bridge.url}/files", headers=AUTH) as response:
        root = await response.json()
    assert sorted(e["name"] for e in root["entries"]) == ["data.bin", "docs"]


async def test_head_gives_size_and_modification_time(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    async with http.head(f"{bridge.url}/files/data.bin", headers=AUTH) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == "1024"
        assert "Last-Modified" in response.headers
        assert await response.read() == b""
    async with http.head(f"{bridge.url}/files/nothing.bin", headers=AUTH) as response:
        assert response.status == 404


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_put_uploads_streamed_and_replaces_atomically(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    payload = random_file(files.parent / "payload.bin", 5 * 1024 * 1024 + 3)
    data = (files.parent / "payload.bin").read_bytes()
    async with http.put(
        f"{bridge.url}/files/docs/new.bin", headers=AUTH, data=_chunks(data, 100_000)
    ) as response:  # chunked transfer encoding: streamed through
        assert response.status == 201
        assert (await response.json())["size"] == len(data)
    assert hashlib.sha256((files / "docs" / "new.bin").read_bytes()).hexdigest() == payload
    async with http.put(f"{bridge.url}/files/docs/new.bin", headers=AUTH, data=b"v2") as response:
        assert response.status == 204
    assert (files / "docs" / "new.bin").read_bytes() == b"v2"
    assert sorted(p.name for p in (files / "docs").iterdir()) == ["empty", "hello.txt", "new.bin"]


async def test_put_errors_map_to_http_statuses(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    async with http.put(f"{bridge.url}/files/missing/dir/x.txt", headers=AUTH, data=b"x") as r:
        assert r.status == 409  # no parent directory
    async with http.put(f"{bridge.url}/files/docs", headers=AUTH, data=b"x") as r:
        assert r.status == 409  # a directory has that name
    async with http.put(f"{bridge.url}/files/docs/sub/", headers=AUTH) as r:
        assert r.status == 201  # a trailing slash creates a directory
    assert (files / "docs" / "sub").is_dir()
    big = b"x" * (21 * 1000 * 1000)
    async with http.put(f"{bridge.url}/files/docs/huge.bin", headers=AUTH, data=big) as r:
        assert r.status == 413
    async with http.put(
        f"{bridge.url}/files/docs/huge.bin", headers=AUTH, data=_chunks(big, 1 << 20)
    ) as r:
        assert r.status == 413  # streamed: found out mid-upload
    assert sorted(p.name for p in (files / "docs").iterdir()) == ["empty", "hello.txt", "sub"]


async def test_delete_files_and_directories(
    bridge: RunningGateway, http: aiohttp.ClientSession, files: Path
) -> None:
    async with http.delete(f"{bridge.url}/files/docs/hello.txt", headers=AUTH) as r:
        assert r.status == 204
    assert not (files / "docs" / "hello.txt").exists()
    async with http.delete(f"{bridge.url}/files/docs/hello.txt", headers=AUTH) as r:
        assert r.status == 404
    (files / "docs" / "empty" / "keep").write_bytes(b"")
    async with http.delete(f"{bridge.url}/files/docs/empty", headers=AUTH) as r:
        assert r.status == 409  # not empty
    (files / "docs" / "empty" / "keep").unlink()
    async with http.delete(f"{bridge.url}/files/docs/empty", headers=AUTH) as r:
        assert r.status == 204
    assert not (files / "docs" / "empty").exists()


async def test_auth_and_traffic_stages_run_before_the_bridge(
    kairos_gateway: Any, ftp_server: FtpServer, http: aiohttp.ClientSession, files: Path
) -> None:
    config = bridge_config(ftp_server)
    config["routes"][0]["plugins"][1]["config"]["budget"] = 2
    gw = await kairos_gateway(config, plugins=[kairos_ftp, HelperPlugins()])
    url = f"{gw.url}/files/docs/hello.txt"
    async with http.get(url) as r:
        assert r.status == 401
        assert r.headers["WWW-Authenticate"] == "Token"
    async with http.get(url, headers={"Authorization": "Token bad"}) as r:
        assert r.status == 401
    for _ in range(2):
        async with http.get(url, headers=AUTH) as r:
            assert r.status == 200
    async with http.get(url, headers=AUTH) as r:
        assert r.status == 429


async def test_bad_paths_methods_and_permissions(
    kairos_gateway: Any, ftp_server: FtpServer, http: aiohttp.ClientSession, files: Path
) -> None:
    config = bridge_config(ftp_server)
    reader = dict(config["routes"][0], name="ro", prefix="/ro")
    reader["plugins"] = [
        {"name": "test-token"},
        {"name": "ftp-bridge", "config": {"username": "reader", "password": "r3ad"}},
    ]
    readonly = dict(config["routes"][0], name="locked", prefix="/locked")
    readonly["plugins"] = [
        {
            "name": "ftp-bridge",
            "config": {"username": USER, "password": PASSWORD, "read_only": True},
        }
    ]
    config["routes"] += [reader, readonly]
    gw = await kairos_gateway(config, plugins=[kairos_ftp, HelperPlugins()])
    for path in ("/files/%2e%2e/etc/passwd", "/files/docs%2f..%2f..%2fx", "/files/a%0d%0aDELE%20x"):
        async with http.get(gw.url + path, headers=AUTH) as r:
            assert r.status in (400, 404), path
            if r.status == 404:
                assert (await r.json())["type"] == "route_not_found"  # the router refused it
    async with http.get(f"{gw.url}/files/a%0d%0aDELE%20data.bin", headers=AUTH) as r:
        assert r.status == 400
    assert (files / "data.bin").exists()
    async with http.post(f"{gw.url}/files/data.bin", headers=AUTH, data=b"x") as r:
        assert r.status == 405
        assert r.headers["Allow"] == "GET, HEAD, PUT, DELETE"
    async with http.put(f"{gw.url}/locked/data.bin", data=b"x") as r:
        assert r.status == 405
        assert r.headers["Allow"] == "GET, HEAD"
    async with http.get(f"{gw.url}/ro/data.bin", headers=AUTH) as r:
        assert r.status == 200
    async with http.put(f"{gw.url}/ro/data.bin", headers=AUTH, data=b"x") as r:
        assert r.status == 403
    async with http.delete(f"{gw.url}/ro/data.bin", headers=AUTH) as r:
        assert r.status == 403
    assert (files / "data.bin").read_bytes() == bytes(range(256)) * 4


async def test_unreachable_or_refusing_servers(
    kairos_gateway: Any, ftp_server: FtpServer, http: aiohttp.ClientSession
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = f"ftp://127.0.0.1:{sock.getsockname()[1]}"
    config = bridge_config(dead)
    config["upstreams"]["ftp-files"]["circuit_breaker"] = {"consecutive_failures": 1}
    wrong = dict(config["routes"][0], name="wrong", prefix="/wrong", upstream="live")
    wrong["plugins"] = [{"name": "ftp-bridge", "config": {"username": USER, "password": "nope"}}]
    config["upstreams"]["live"] = {"backends": [{"url": ftp_server.url}]}
    config["routes"].append(wrong)
    gw = await kairos_gateway(config, plugins=[kairos_ftp, HelperPlugins()])
    async with http.get(f"{gw.url}/files/x", headers=AUTH) as r:
        assert r.status == 502
    async with http.get(f"{gw.url}/files/x", headers=AUTH) as r:
        assert r.status == 503  # the breaker is open now
        assert "Retry-After" in r.headers
    async with http.get(f"{gw.url}/wrong/x") as r:
        assert r.status == 502
        assert "refused the gateway's login" in (await r.json())["message"]


async def test_apikey_plugin_guards_the_bridge(
    kairos_gateway: Any, ftp_server: FtpServer, http: aiohttp.ClientSession, files: Path
) -> None:
    pytest.importorskip("kairos_apikey")
    key = "kairos-test-key-0123456789"
    digest = hashlib.sha256(key.encode()).hexdigest()
    config = bridge_config(ftp_server)
    config["consumers"] = [{"name": "bob"}]
    config["routes"][0]["plugins"][0] = {
        "name": "apikey",
        "config": {"keys": [{"consumer": "bob", "hash": f"sha256:{digest}"}]},
    }
    gw = await kairos_gateway(config, plugins=[kairos_ftp, HelperPlugins()])
    async with http.get(f"{gw.url}/files/docs/hello.txt") as r:
        assert r.status == 401
    async with http.get(f"{gw.url}/files/docs/hello.txt", headers={"X-API-Key": key}) as r:
        assert r.status == 200
        assert await r.read() == b"hello, world\n"
