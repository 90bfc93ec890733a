"""http_fetch: every safety rule, without a network (the resolver and the opener are fakes)."""

from __future__ import annotations

import io
import ipaddress
import json
import socket
import ssl
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest

from handlers.shared.store import MAX_PAYLOAD_BYTES
from handlers.shared.tooling import ToolContext, ToolInputError, ToolTransientError
from handlers.tools import http_fetch, load_tool
from handlers.tools.http_fetch import (
    TOOL,
    Fetcher,
    HttpFetchInput,
    PinnedHTTPSConnection,
    blocked_reason,
    open_pinned,
    parse_ipv4_host,
    parse_url,
    resolve_host,
    run,
)

PUBLIC = "93.184.216.34"
OTHER_PUBLIC = "1.1.1.1"
UNSPECIFIED = str(ipaddress.IPv4Address(0))  # 0.0.0.0, spelled so that no one mistakes it for a bind address


# -- fakes -------------------------------------------------------------------------------------


class FakeResolver:
    """Answers from a table; a list of lists is served one list per call (then the last again)."""

    def __init__(self, table: dict[str, list[str] | list[list[str]]] | None = None):
        self.table = {"example.com": [PUBLIC], "other.example": [OTHER_PUBLIC], **(table or {})}
        self.calls: list[tuple[str, int]] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        answers = self.table.get(host)
        if answers is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if answers and isinstance(answers[0], list):
            served = sum(1 for h, _ in self.calls if h == host) - 1
            return list(answers[min(served, len(answers) - 1)])
        return list(answers)


@dataclass
class Call:
    ip: str
    hostname: str
    path: str
    headers: dict[str, str]
    timeout: float


def response(status: int = 200, body: Any = b"hello", content_type: str | None = "text/plain", **headers: str):
    all_headers = {k.replace("_", "-").lower(): v for k, v in headers.items()}
    if content_type is not None:
        all_headers["content-type"] = content_type
    return status, all_headers, body


def redirect(location: str, status: int = 302):
    return response(status, b"", None, location=location)


@dataclass
class FakeOpener:
    """Serves the queued responses in order; a queued exception is raised instead."""

    responses: list[Any] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)

    def __call__(self, ip: str, hostname: str, path: str, headers: dict[str, str], timeout: float):
        self.calls.append(Call(ip, hostname, path, dict(headers), timeout))
        if not self.responses:
            pytest.fail(f"unexpected connection to {ip} for {hostname}{path}")
        served = self.responses.pop(0)
        if isinstance(served, BaseException):
            raise served
        return served


class Reader:
    """A streamed body that remembers how much was read and whether it was closed."""

    def __init__(self, data: bytes, error: BaseException | None = None):
        self.stream, self.error = io.BytesIO(data), error
        self.read_bytes, self.closed = 0, False

    def read(self, size: int) -> bytes:
        chunk = self.stream.read(size)
        if not chunk and self.error is not None:
            raise self.error
        self.read_bytes += len(chunk)
        return chunk

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self, step: float = 0.0):
        self.now, self.step = 1_000.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.fixture
def resolver() -> FakeResolver:
    return FakeResolver({"localhost": ["127.0.0.1"]})


@pytest.fixture
def opener() -> FakeOpener:
    return FakeOpener()


@pytest.fixture
def fetch(monkeypatch, resolver, opener):
    """``fetch(url, maxBytes=...)`` through ``run()``, with the fakes installed as the module's fetcher."""
    monkeypatch.setattr(http_fetch, "FETCHER", Fetcher(resolve=resolver, open=opener))

    def _fetch(url: str, **fields: Any) -> dict[str, Any]:
        return run(None, msgspec.convert({"url": url, **fields}, HttpFetchInput)).output

    return _fetch


# -- rule 1 and 2: hostile URLs ------------------------------------------------------------------

HOSTILE = [
    ("http://example.com", "only https://"),
    ("ftp://example.com/file", "only https://"),
    ("file:///etc/passwd", "only https://"),
    ("gopher://example.com:70/", "only https://"),
    ("//example.com/", "only https://"),
    ("https://user:pw@example.com", "credentials"),
    ("https://user@example.com", "credentials"),
    ("https://example.com:8443", "only port 443"),
    ("https://example.com:80/", "only port 443"),
    ("https:///etc/passwd", "has no host"),
    ("https://127.0.0.1", "127.0.0.1 is a loopback address"),
    ("https://127.0.0.1:443/x", "127.0.0.1 is a loopback address"),
    ("https://localhost", "resolves to 127.0.0.1 is a loopback address"),
    ("https://[::1]", "::1 is a loopback address"),
    ("https://[::]", "the unspecified address"),
    ("https://10.0.0.5", "10.0.0.5 is a private address"),
    ("https://172.16.3.4", "172.16.3.4 is a private address"),
    ("https://192.168.1.1", "192.168.1.1 is a private address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local / cloud metadata address"),
    ("https://100.64.1.1", "carrier-grade NAT"),
    ("https://0.0.0.0", "0.0.0.0 is a 'this network' address"),
    ("https://224.0.0.1", "multicast"),
    ("https://255.255.255.255", "reserved"),
    ("https://[::ffff:127.0.0.1]", "embeds 127.0.0.1, a loopback address"),
    ("https://[::ffff:169.254.169.254]", "embeds 169.254.169.254"),
    ("https://[::ffff:93.184.216.34]", "IPv4-mapped"),
    ("https://[2002:7f00:1::1]", "embeds 127.0.0.1"),
    ("https://[64:ff9b::a9fe:a9fe]", "embeds 169.254.169.254"),
    ("https://[fd00::1]", "unique-local"),
    ("https://[fd00:ec2::254]", "unique-local"),
    ("https://[fe80::1]", "fe80::1 is a link-local address"),
    ("https://[fe80::1%25eth0]", "zone"),
    ("https://[fec0::1]", "site-local"),
    ("https://[ff02::1]", "multicast"),
    ("https://2130706433", "127.0.0.1 is a loopback address"),
    ("https://0x7f.0.0.1", "127.0.0.1 is a loopback address"),
    ("https://017700000001", "127.0.0.1 is a loopback address"),
    ("https://127.1", "127.0.0.1 is a loopback address"),
    ("https://0x7f000001/", "127.0.0.1 is a loopback address"),
    ("https://0251.0376.0251.0376/", "169.254.169.254 is a link-local"),
    ("https://127.0.0.1./", "127.0.0.1 is a loopback address"),
    ("https://%31%32%37.0.0.1/", "neither a hostname nor an IPv4 address"),
    ("https://１２７.０.０.１/", "127.0.0.1 is a loopback address"),
    ("https://1572395042/", "write IP addresses as 93.184.216.34"),
    ("https://foo.123/", "neither a hostname nor an IPv4 address"),
    ("https://1.2.3.4.5/", "neither a hostname nor an IPv4 address"),
    ("https://256.0.0.1/", "neither a hostname nor an IPv4 address"),
    ("https://exa mple.com/", "spaces or control characters"),
    ("https://example.com/\r\nX-Injected: 1", "spaces or control characters"),
    ("https://[not-an-ip]/", "not valid"),
    ("https://bad_host!.com/", "not a valid hostname"),
    ("https://example.com\\@127.0.0.1/", "credentials"),
]


@pytest.mark.parametrize(("url", "message"), HOSTILE)
def test_hostile_urls_are_refused_before_any_connection(fetch, opener, url, message):
    with pytest.raises(ToolInputError) as refused:
        fetch(url)
    assert message in str(refused.value)
    assert opener.calls == []


NUMERIC_LOOPBACK = ["2130706433", "0x7f.0.0.1", "017700000001", "127.1", "0x7f000001", "127.0.0.1"]


@pytest.mark.parametrize("host", [*NUMERIC_LOOPBACK, UNSPECIFIED, "0251.0376.0251.0376", "::ffff:127.0.0.1"])
def test_numeric_hosts_resolved_by_the_real_getaddrinfo_are_blocked(host):
    """getaddrinfo answers numeric hosts offline; whatever it returns is refused."""
    addresses = resolve_host(host, 443)
    assert addresses
    assert all(blocked_reason(address) is not None for address in addresses)


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_numeric_hosts_are_refused_with_the_real_resolver(host):
    """With the real resolver installed, numeric hosts are refused and never opened."""
    opener = FakeOpener()
    with pytest.raises(ToolInputError, match=r"127\.0\.0\.1 is a loopback address"):
        Fetcher(resolve=resolve_host, open=opener).fetch(f"https://{host}/")
    assert opener.calls == []


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("0", UNSPECIFIED),
        ("93.184.216.34", "93.184.216.34"),
    ],
)
def test_legacy_ipv4_spellings_are_read_as_inet_aton_does(host, address):
    assert parse_ipv4_host(host) == ipaddress.IPv4Address(address)
    assert resolve_host(host, 443) == [address]


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "a-1.b_2.example", "123.example"])
def test_names_are_not_ip_addresses(host):
    assert parse_ipv4_host(host) is None


@pytest.mark.parametrize(
    "address",
    [
        "0.1.2.3",
        "10.1.1.1",
        "100.100.100.200",
        "127.255.255.254",
        "169.254.170.2",
        "172.31.255.255",
        "192.0.0.170",
        "192.0.2.1",
        "192.168.0.1",
        "198.18.0.1",
        "203.0.113.5",
        "239.255.255.250",
        "240.0.0.1",
        "::",
        "::1",
        "::127.0.0.1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "64:ff9b:1::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
        "2001:db8::1",
        "2002:a00:1::1",
        "fc00::1",
        "fd12:3456::1",
        "fe80::1",
        "fe80::1%eth0",
        "fec0::1",
        "ff02::1",
        "not an address",
    ],
)
def test_non_public_addresses_are_blocked(address):
    assert blocked_reason(address) is not None


@pytest.mark.parametrize("address", [PUBLIC, "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "2a00:1450:4001:80b::200e"])
def test_public_addresses_pass(address):
    assert blocked_reason(address) is None


# -- rule 2 and 3: DNS answers and rebinding -------------------------------------------------


def test_a_host_with_any_private_address_is_refused(fetch, resolver, opener):
    resolver.table["mixed.example"] = [PUBLIC, "127.0.0.1"]
    with pytest.raises(ToolInputError, match=r"resolves to 127\.0\.0\.1 is a loopback address"):
        fetch("https://mixed.example/")
    assert opener.calls == []


@pytest.mark.parametrize("private", ["10.0.0.1", "::1", "fd00::1", "::ffff:169.254.169.254", "169.254.169.254"])
def test_a_host_resolving_only_to_private_addresses_is_refused(fetch, resolver, opener, private):
    resolver.table["internal.example"] = [private]
    with pytest.raises(ToolInputError, match=r"refused internal\.example"):
        fetch("https://internal.example/")
    assert opener.calls == []


def test_rebinding_cannot_move_the_connection_to_a_private_address(fetch, resolver, opener):
    """The host is resolved once per hop and the opener gets that validated address, never the name."""
    resolver.table["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    opener.responses.append(response(200, b"ok"))
    result = fetch("https://rebind.example/page?q=1#frag")
    assert result["body"] == "ok"
    assert resolver.calls == [("rebind.example", 443)]
    [call] = opener.calls
    assert call.ip == PUBLIC
    assert call.hostname == "rebind.example"
    assert call.headers["Host"] == "rebind.example"
    assert call.path == "/page?q=1"


def test_a_redirect_to_the_same_host_is_resolved_and_checked_again(fetch, resolver, opener):
    resolver.table["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    opener.responses.append(redirect("/next"))
    with pytest.raises(ToolInputError, match=r"127\.0\.0\.1"):
        fetch("https://rebind.example/")
    assert [call.ip for call in opener.calls] == [PUBLIC]


def test_an_ipv4_address_is_preferred_and_all_are_validated(fetch, resolver, opener):
    resolver.table["dual.example"] = ["2606:4700:4700::1111", OTHER_PUBLIC]
    opener.responses.append(response())
    fetch("https://dual.example/")
    assert opener.calls[0].ip == OTHER_PUBLIC


def test_an_ipv6_literal_is_connected_to_as_is(fetch, opener):
    opener.responses.append(response())
    result = fetch("https://[2606:4700:4700:0::1111]/dns")
    call = opener.calls[0]
    assert (call.ip, call.hostname, call.headers["Host"]) == (
        "2606:4700:4700::1111",
        "2606:4700:4700::1111",
        "[2606:4700:4700::1111]",
    )
    assert result["url"] == "https://[2606:4700:4700::1111]/dns"


def test_request_headers_and_normalized_url(fetch, opener):
    opener.responses.append(response())
    result = fetch("HTTPS://Example.COM:443/a%20b/ü?x=ü&y#top")
    call = opener.calls[0]
    assert call.hostname == "example.com"
    assert call.path == "/a%20b/%C3%BC?x=%C3%BC&y"
    assert call.headers == {
        "Host": "example.com",
        "User-Agent": http_fetch.USER_AGENT,
        "Accept": http_fetch.ACCEPT,
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    assert result["url"] == "https://example.com/a%20b/%C3%BC?x=%C3%BC&y"


def test_an_internationalized_hostname_is_sent_as_punycode(fetch, resolver, opener):
    resolver.table["xn--bcher-kva.example"] = [PUBLIC]
    opener.responses.append(response())
    fetch("https://Bücher.example/")
    assert resolver.calls == [("xn--bcher-kva.example", 443)]
    assert opener.calls[0].headers["Host"] == "xn--bcher-kva.example"


def test_unknown_hosts_are_the_models_mistake_and_resolver_outages_are_transient(fetch, resolver):
    with pytest.raises(ToolInputError, match="does not exist"):
        fetch("https://no-such-host.example/")

    def failing(host, port):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    with pytest.raises(ToolTransientError, match="could not resolve"):
        Fetcher(resolve=failing, open=FakeOpener()).fetch("https://example.com/")
    with pytest.raises(ToolInputError, match="no addresses"):
        Fetcher(resolve=lambda host, port: [], open=FakeOpener()).fetch("https://example.com/")


# -- rule 4: redirects ---------------------------------------------------------------------------


def test_a_redirect_to_the_metadata_address_is_refused(fetch, opener):
    opener.responses.append(redirect("https://169.254.169.254/latest/meta-data/iam/"))
    with pytest.raises(ToolInputError, match=r"169\.254\.169\.254 is a link-local / cloud metadata address"):
        fetch("https://example.com/")
    assert len(opener.calls) == 1


def test_a_redirect_to_a_host_that_resolves_privately_is_refused(fetch, resolver, opener):
    resolver.table["evil.example"] = ["10.0.0.7"]
    opener.responses.append(redirect("//evil.example/admin", 301))
    with pytest.raises(ToolInputError, match=r"refused evil\.example: it resolves to 10\.0\.0\.7"):
        fetch("https://example.com/")
    assert len(opener.calls) == 1


@pytest.mark.parametrize("location", ["http://example.com/", "ftp://example.com/", "https://example.com:8080/"])
def test_a_redirect_away_from_https_443_is_refused(fetch, opener, location):
    opener.responses.append(redirect(location, 307))
    with pytest.raises(ToolInputError, match="only"):
        fetch("https://example.com/")
    assert len(opener.calls) == 1


def test_three_redirects_are_followed_a_fourth_is_refused(fetch, opener):
    opener.responses.extend([redirect("/1"), redirect("/2", 301), redirect("/3", 308), redirect("/4", 303)])
    with pytest.raises(ToolInputError, match="more than 3 redirects"):
        fetch("https://example.com/")
    assert [call.path for call in opener.calls] == ["/", "/1", "/2", "/3"]


def test_three_redirects_are_allowed(fetch, opener):
    opener.responses.extend(
        [redirect("/1"), redirect("https://other.example/2"), redirect("/3"), response(200, b"end")]
    )
    result = fetch("https://example.com/")
    assert result == {
        "url": "https://other.example/3",
        "status": 200,
        "contentType": "text/plain",
        "body": "end",
        "truncated": False,
        "redirects": 3,
    }
    assert [call.ip for call in opener.calls] == [PUBLIC, PUBLIC, OTHER_PUBLIC, OTHER_PUBLIC]


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("../x?y=1", "https://example.com/a/x?y=1"),
        ("sibling", "https://example.com/a/b/sibling"),
        ("/root#frag", "https://example.com/root"),
        ("?page=2", "https://example.com/a/b/c?page=2"),
        ("//other.example/p", "https://other.example/p"),
    ],
)
def test_a_relative_location_is_resolved_against_the_current_url(fetch, opener, location, expected):
    opener.responses.extend([redirect(location), response(200, b"{}", "application/json")])
    result = fetch("https://example.com/a/b/c")
    assert result["url"] == expected
    assert result["redirects"] == 1
    assert "https://" + opener.calls[1].hostname + opener.calls[1].path == expected


def test_a_redirect_without_location_is_refused(fetch, opener):
    opener.responses.append(response(302, b"", None))
    with pytest.raises(ToolInputError, match="without a Location"):
        fetch("https://example.com/")


def test_redirect_bodies_are_closed(fetch, opener):
    first, second = Reader(b"moved"), Reader(b"done")
    opener.responses.extend([(*redirect("/b")[:2], first), response(200, second)])
    assert fetch("https://example.com/a")["body"] == "done"
    assert first.closed and second.closed


# -- rule 5: limits, content types, decoding -------------------------------------------------


def test_a_json_response_is_returned(fetch, opener):
    opener.responses.append(response(200, b'{"a": 1}', "application/json; charset=utf-8"))
    assert fetch("https://example.com/api") == {
        "url": "https://example.com/api",
        "status": 200,
        "contentType": "application/json",
        "body": '{"a": 1}',
        "truncated": False,
        "redirects": 0,
    }


def test_a_4xx_page_is_returned_with_its_status(fetch, opener):
    opener.responses.append(response(404, b"<h1>Not found</h1>", "text/html"))
    result = fetch("https://example.com/missing")
    assert (result["status"], result["contentType"], result["body"]) == (404, "text/html", "<h1>Not found</h1>")


def test_a_body_larger_than_max_bytes_is_truncated(fetch, opener):
    reader = Reader(b"x" * 100_000)
    opener.responses.append(response(200, reader))
    result = fetch("https://example.com/big", maxBytes=1_000)
    assert result["body"] == "x" * 1_000
    assert result["truncated"] is True
    assert reader.read_bytes == 1_001  # one byte past the limit tells it was cut; no more is read
    assert reader.closed


@pytest.mark.parametrize(("size", "truncated"), [(10, False), (11, True)])
def test_truncation_at_the_limit(fetch, opener, size, truncated):
    opener.responses.append(response(200, b"y" * size))
    result = fetch("https://example.com/", maxBytes=10)
    assert (result["body"], result["truncated"]) == ("y" * 10, truncated)


def test_the_default_limit_is_64_kib(fetch, opener):
    opener.responses.append(response(200, Reader(b"z" * 100_000)))
    result = fetch("https://example.com/")
    assert len(result["body"]) == 65_536 and result["truncated"] is True


def test_a_large_undecodable_body_still_fits_the_step_record(fetch, opener):
    """262144 bytes that each decode to U+FFFD would be 786 KB of JSON; the body is cut to fit."""
    opener.responses.append(response(200, b"\xff" * 262_144, "text/plain"))
    result = fetch("https://example.com/", maxBytes=262_144)
    assert result["truncated"] is True
    assert len(json.dumps(result, ensure_ascii=False).encode()) <= MAX_PAYLOAD_BYTES


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/html; charset=utf-8",
        "TEXT/CSV",
        "application/json",
        "application/xml",
        "application/xhtml+xml",
        "application/ld+json",
        "application/atom+xml",
        "application/problem+json; charset=utf-8",
    ],
)
def test_text_like_content_types_are_fetched(fetch, opener, content_type):
    opener.responses.append(response(200, b"text", content_type))
    assert fetch("https://example.com/")["body"] == "text"


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("image/png", "not text"),
        ("application/octet-stream", "not text"),
        ("application/pdf", "not text"),
        ("application/zip", "not text"),
        ("video/mp4", "not text"),
        ("garbage", "not text"),
        ("", "no Content-Type"),
        (None, "no Content-Type"),
    ],
)
def test_binary_or_unknown_content_is_refused(fetch, opener, content_type, message):
    reader = Reader(b"\x89PNG\r\n")
    opener.responses.append(response(200, reader, content_type))
    with pytest.raises(ToolInputError, match=message):
        fetch("https://example.com/image")
    assert reader.read_bytes == 0 and reader.closed


def test_a_compressed_body_is_refused(fetch, opener):
    opener.responses.append(response(200, b"\x1f\x8b", "text/plain", content_encoding="gzip"))
    with pytest.raises(ToolInputError, match="gzip-encoded"):
        fetch("https://example.com/")


def test_a_no_content_response_needs_no_content_type(fetch, opener):
    opener.responses.append(response(204, b"", None))
    assert fetch("https://example.com/")["body"] == ""


@pytest.mark.parametrize(
    ("content_type", "data", "text"),
    [
        ("text/plain; charset=iso-8859-1", b"caf\xe9", "café"),
        ('text/html; charset="windows-1252"', b"\x93quoted\x94", "\u201cquoted\u201d"),
        ("text/plain", "café".encode(), "café"),
        ("text/plain; charset=no-such-charset", "café".encode(), "café"),
        ("text/plain; charset=rot13", b"abc", "abc"),
        ("text/plain; charset=utf-8", b"ok \xff", "ok \ufffd"),
        ("application/json; charset=utf-16", '{"k": "ü"}'.encode("utf-16"), '{"k": "ü"}'),
    ],
)
def test_the_body_is_decoded_with_its_charset(fetch, opener, content_type, data, text):
    opener.responses.append(response(200, data, content_type))
    assert fetch("https://example.com/")["body"] == text


def test_the_time_budget_covers_the_whole_fetch(resolver):
    clock = Clock(step=4.0)  # every look at the clock costs 4 s
    opener = FakeOpener([redirect("/1"), redirect("/2"), response()])
    with pytest.raises(ToolTransientError, match="longer than 10 s"):
        Fetcher(resolve=resolver, open=opener, clock=clock).fetch("https://example.com/")
    assert len(opener.calls) == 2
    assert all(0 < call.timeout <= 10 for call in opener.calls)


def test_the_time_budget_bounds_reading_the_body(resolver):
    clock = Clock(step=3.0)
    reader = Reader(b"x" * 100_000)
    opener = FakeOpener([response(200, reader)])
    with pytest.raises(ToolTransientError, match="longer than 10 s"):
        Fetcher(resolve=resolver, open=opener, clock=clock).fetch("https://example.com/", 100_000)
    assert reader.closed


def test_the_opener_gets_what_is_left_of_the_budget(fetch, opener):
    opener.responses.append(response())
    fetch("https://example.com/")
    assert 9 < opener.calls[0].timeout <= 10


# -- transient failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(104, "Connection reset by peer"),
        ConnectionRefusedError(111, "Connection refused"),
        TimeoutError("timed out"),
        ssl.SSLError(1, "unexpected eof"),
        OSError(101, "Network is unreachable"),
    ],
)
def test_network_failures_are_transient(fetch, opener, error):
    opener.responses.append(error)
    with pytest.raises(ToolTransientError, match=type(error).__name__):
        fetch("https://example.com/")


def test_a_reset_while_reading_the_body_is_transient(fetch, opener):
    opener.responses.append(response(200, Reader(b"partial", error=ConnectionResetError("reset"))))
    with pytest.raises(ToolTransientError, match="ConnectionResetError"):
        fetch("https://example.com/")


@pytest.mark.parametrize("status", [500, 502, 503, 504, 429])
def test_server_errors_are_transient(fetch, opener, status):
    opener.responses.append(response(status, b"busy", "text/plain"))
    with pytest.raises(ToolTransientError, match=f"answered {status}"):
        fetch("https://example.com/")


def test_an_invalid_certificate_is_the_models_problem(fetch, opener):
    error = ssl.SSLCertVerificationError(1, "certificate verify failed")
    error.verify_message = "Hostname mismatch, certificate is not valid for 'example.com'."
    opener.responses.append(error)
    with pytest.raises(ToolInputError, match=r"TLS certificate of example\.com is not valid: Hostname mismatch"):
        fetch("https://example.com/")


def test_a_malformed_response_is_refused(fetch, opener):
    opener.responses.append(http_fetch.http.client.BadStatusLine("garbage"))
    with pytest.raises(ToolInputError, match="malformed HTTP response"):
        fetch("https://example.com/")


# -- rule 3: the real connection, on a socket pair (no network) ---------------------------------


class FakeTLSContext:
    """Stands in for the SSL context: records the SNI name and hands back the plain socket."""

    verify_mode = ssl.CERT_REQUIRED
    check_hostname = True

    def __init__(self):
        self.server_hostnames: list[str] = []

    def wrap_socket(self, sock, server_hostname):
        self.server_hostnames.append(server_hostname)
        return sock


def test_the_pinned_connection_dials_the_validated_ip_and_verifies_the_hostname(monkeypatch):
    client, server = socket.socketpair()
    server.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello"
    )
    dialed = []

    def create_connection(address, timeout):
        dialed.append((address, timeout))
        return client

    monkeypatch.setattr(http_fetch.socket, "create_connection", create_connection)
    context = FakeTLSContext()
    headers = {"Host": "example.com", "User-Agent": "t", "Accept-Encoding": "identity", "Connection": "close"}

    status, response_headers, body = open_pinned(PUBLIC, "example.com", "/path?q=1", headers, 5.0, context=context)
    try:
        assert status == 200
        assert response_headers["content-type"] == "text/plain; charset=utf-8"
        assert body.read(100) == b"hello"
        assert body.read(100) == b""
    finally:
        body.close()
    request = server.recv(65_536).decode()
    server.close()

    assert dialed == [((PUBLIC, 443), 5.0)]
    assert context.server_hostnames == ["example.com"]
    assert request.startswith("GET /path?q=1 HTTP/1.1\r\n")
    assert "\r\nHost: example.com\r\n" in request
    assert request.count("Host:") == 1
    assert "Accept-Encoding: identity" in request


def test_the_default_tls_context_verifies_certificates_and_hostnames():
    connection = PinnedHTTPSConnection(PUBLIC, "example.com", timeout=1.0)
    assert connection.tls_context.verify_mode == ssl.CERT_REQUIRED
    assert connection.tls_context.check_hostname is True
    assert (connection.pinned_ip, connection.tls_hostname, connection.port) == (PUBLIC, "example.com", 443)


def test_the_module_fetcher_uses_the_real_resolver_and_opener():
    assert http_fetch.FETCHER.resolve is resolve_host
    assert http_fetch.FETCHER.open is open_pinned
    assert http_fetch.FETCHER.budget_seconds == 10
    assert http_fetch.FETCHER.max_redirects == 3


# -- the tool contract -----------------------------------------------------------------------


def test_the_tool_is_registered_with_its_schema():
    assert load_tool("http_fetch") is TOOL
    assert http_fetch.handler == TOOL.lambda_handler
    schema = TOOL.spec()["inputSchema"]
    assert schema["required"] == ["url"]
    assert schema["properties"]["url"]["maxLength"] == 2048
    assert (schema["properties"]["maxBytes"]["minimum"], schema["properties"]["maxBytes"]["maximum"]) == (1, 262_144)
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize(
    "raw",
    [
        {},
        {"url": ""},
        {"url": "https://example.com/" + "a" * 2048},
        {"url": "https://example.com/", "maxBytes": 0},
        {"url": "https://example.com/", "maxBytes": 262_145},
        {"url": "https://example.com/", "method": "POST"},
        {"url": 42},
    ],
)
def test_invalid_inputs_are_rejected(raw):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(raw, HttpFetchInput)


def test_input_defaults():
    request = msgspec.convert({"url": "https://example.com/"}, HttpFetchInput)
    assert request.maxBytes == 65_536


def test_parse_url_normalizes():
    target = parse_url("https://EXAMPLE.com.:443/p?q#f")
    assert (target.url, target.host, target.host_header, target.path, target.literal) == (
        "https://example.com/p?q",
        "example.com",
        "example.com",
        "/p?q",
        None,
    )


def test_the_step_records_a_refusal_for_the_model(store, monkeypatch):
    monkeypatch.setattr(http_fetch, "FETCHER", Fetcher(resolve=FakeResolver(), open=FakeOpener([response(200, b"hi")])))
    ctx = ToolContext("exec-1", 1, "user-1", "session-1", None, store)
    refused = TOOL.execute(ctx, {"url": "https://169.254.169.254/latest/meta-data"}, "tu-1")
    assert refused["status"] == "FAILED"
    assert "169.254.169.254 is a link-local / cloud metadata address" in refused["output"]["error"]

    ctx = ToolContext("exec-1", 2, "user-1", "session-1", None, store)
    fetched = TOOL.execute(ctx, {"url": "https://example.com/"}, "tu-2")
    assert fetched["status"] == "SUCCEEDED"
    assert fetched["output"]["body"] == "hi"
