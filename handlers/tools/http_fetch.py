"""http_fetch: a network tool. GETs a public HTTPS URL and returns its text, safely.

What the model asks for is untrusted, and so is every server it points at. The rules:

* Only ``https://`` URLs with a host, no ``user:pass@``, port 443 or none.
* Every address the host resolves to must be public (see :func:`blocked_reason`); an IP
  literal in any spelling (``2130706433``, ``0x7f.0.0.1``, ``127.1``...) is judged as the
  address it denotes.
* No DNS rebinding: the connection goes to the exact address that was validated, with TLS SNI,
  certificate verification and the ``Host`` header for the original hostname.
* Redirects are followed by hand, at most :data:`MAX_REDIRECTS`, each target re-validated.
* One time budget (:data:`TIME_BUDGET_SECONDS`) for the whole fetch, at most ``maxBytes`` of
  body, text-like content types only, decoded with the declared charset.
* A result is reused (the step's result cache) only as HTTP caching allows (RFC 9111, as a
  shared cache that never revalidates; see :func:`freshness`): every response of the fetch,
  redirects included, must carry an explicit freshness lifetime, and the result is shared
  between users only when every one of them says ``public``.

The resolver and the connection opener are injectable (:class:`Fetcher`), so the rules are
tested without a network; :data:`FETCHER` uses the real ones.

This module is longer than the 500 lines the other handler modules keep to, on purpose: the
rules above are one protocol, read and reviewed together, and nothing but this tool uses
them. A tool's archive carries its own module and the ``handlers/shared`` modules it
imports; split within ``handlers/tools`` they would be a second tool module in this one's
archive, and moved to ``handlers/shared`` they would belong to one function only.

One module on purpose: it is one tool's security boundary (the address checks, the pinned
connection, redirects, size and type limits, and the RFC 9111 rules for reusing a response),
which a reviewer reads in one place.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC
from typing import Annotated, Any, NamedTuple, Protocol
from urllib.parse import quote, urljoin, urlsplit

import msgspec

from handlers.shared.store import MAX_PAYLOAD_BYTES
from handlers.shared.tooling import (
    ResultCache,
    Reusable,
    ToolContext,
    ToolDefinition,
    ToolInputError,
    ToolTransientError,
)

MAX_URL = 2_048
DEFAULT_MAX_BYTES = 65_536
MAX_BYTES_LIMIT = 262_144
MAX_REDIRECTS = 3
TIME_BUDGET_SECONDS = 10.0
HTTPS_PORT = 443
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
READ_CHUNK = 16_384
# The decoded body, JSON-encoded, must leave room in the step's record for the other fields.
MAX_BODY_JSON_BYTES = MAX_PAYLOAD_BYTES - 16_384
USER_AGENT = "agent-infra-http-fetch/1.0"
# A result is reused for at most a day, whatever the origin allows: it bounds what a wrong
# or over-generous Cache-Control costs, and the entries' storage.
MAX_CACHE_SECONDS = 86_400
ACCEPT = "text/*, application/json, application/xml, application/xhtml+xml, application/*+json, application/*+xml"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class HttpFetchInput(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    url: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_URL, description="The https:// URL to GET")]
    maxBytes: Annotated[
        int, msgspec.Meta(ge=1, le=MAX_BYTES_LIMIT, description="At most this many bytes of the body are read")
    ] = DEFAULT_MAX_BYTES


# -- which addresses are public --------------------------------------------------------------

_BLOCKED_NETWORKS: tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...] = tuple(
    (ipaddress.ip_network(network), label)
    for network, label in (
        ("0.0.0.0/8", "a 'this network' address (0.0.0.0/8)"),
        ("10.0.0.0/8", "a private address"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("127.0.0.0/8", "a loopback address"),
        ("169.254.0.0/16", "a link-local / cloud metadata address (169.254.0.0/16)"),
        ("172.16.0.0/12", "a private address"),
        ("192.0.0.0/24", "an IETF protocol address (192.0.0.0/24)"),
        ("192.168.0.0/16", "a private address"),
        ("198.18.0.0/15", "a benchmarking address (198.18.0.0/15)"),
        ("224.0.0.0/4", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
        ("::/128", "the unspecified address"),
        ("::1/128", "a loopback address"),
        ("::ffff:0:0/96", "an IPv4-mapped IPv6 address (use the IPv4 address)"),
        ("64:ff9b::/96", "a NAT64 address"),
        ("64:ff9b:1::/48", "a local-use NAT64 address"),
        ("2001::/32", "a Teredo address"),
        ("2002::/16", "a 6to4 address"),
        ("fc00::/7", "a unique-local address (fc00::/7)"),
        ("fe80::/10", "a link-local address (fe80::/10)"),
        ("fec0::/10", "a site-local address (fec0::/10)"),
        ("ff00::/8", "a multicast address"),
    )
)
_FLAGS = (
    ("is_unspecified", "the unspecified address"),
    ("is_loopback", "a loopback address"),
    ("is_link_local", "a link-local address"),
    ("is_multicast", "a multicast address"),
    ("is_private", "a private address"),
    ("is_reserved", "a reserved address"),
    ("is_site_local", "a site-local address"),
)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address carries: mapped, 6to4, Teredo, NAT64, IPv4-compatible."""
    embedded: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        embedded.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        embedded.append(ip.sixtofour)
    if ip.teredo is not None:
        embedded.extend(ip.teredo)
    if int(ip) >> 32 in (0, 0x0064_FF9B_0000_0000_0000_0000) and int(ip) > 1:  # ::a.b.c.d, 64:ff9b::a.b.c.d
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF))
    return embedded


def blocked_reason(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched from, or None if it is a public unicast address."""
    try:
        ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    except ValueError:
        return f"{address!r} is not an IP address"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return f"{ip} is a scoped (zone) address"
        for inner in _embedded_ipv4(ip):
            reason = blocked_reason(inner)
            if reason is not None:
                return f"{ip} embeds {inner}, {reason.removeprefix(f'{inner} is ')}"
    for network, label in _BLOCKED_NETWORKS:
        if ip.version == network.version and ip in network:
            return f"{ip} is {label}"
    for flag, label in _FLAGS:
        if getattr(ip, flag, False):
            return f"{ip} is {label}"
    if not ip.is_global:
        return f"{ip} is not a globally routable address"
    return None


# -- URLs --------------------------------------------------------------------------------------

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_DECIMAL, _OCTAL, _HEX = re.compile(r"^[0-9]+$"), re.compile(r"^0[0-7]*$"), re.compile(r"^0x[0-9a-f]*$")


def _ipv4_number(part: str) -> int | None:
    if _HEX.match(part):
        return int(part[2:] or "0", 16)
    if _OCTAL.match(part):
        return int(part, 8)
    if _DECIMAL.match(part) and not part.startswith("0"):
        return int(part)
    return None


def parse_ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """The address a numeric host denotes in any legacy spelling (``2130706433``, ``0x7f.1``,
    ``017700000001``, ``127.1``), as browsers and ``inet_aton`` read it; None for a name.
    A host that ends in a number but is not a valid address is refused outright."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not (_DECIMAL.match(parts[-1]) or _HEX.match(parts[-1])):
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if len(parts) > 4 or None in numbers:
        raise ToolInputError(f"the host {host!r} is neither a hostname nor an IPv4 address")
    *leading, last = (n for n in numbers if n is not None)
    if any(n > 255 for n in leading) or last >= 256 ** (4 - len(leading)):
        raise ToolInputError(f"the host {host!r} is neither a hostname nor an IPv4 address")
    value = last
    for index, number in enumerate(leading):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _short(url: str) -> str:
    return url if len(url) <= 200 else url[:200] + "..."


class Target(msgspec.Struct, frozen=True):
    """A URL that passed rule 1: what to connect to and what to ask for."""

    url: str
    """Normalized: ``https://host/path?query``, no port, no fragment."""
    host: str
    """ASCII hostname, or the address text of an IP literal."""
    literal: IPAddress | None
    host_header: str
    path: str
    """Path and query, percent-encoded ASCII."""


def parse_url(url: str) -> Target:
    """Rule 1: an ``https://`` URL with a host, no userinfo, port 443 or none."""
    if len(url) > MAX_URL:
        raise ToolInputError(f"the URL is longer than {MAX_URL} characters")
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in url):
        raise ToolInputError(f"the URL {_short(url)!r} contains spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ToolInputError(f"the URL {_short(url)!r} is not valid: {error}") from None
    if parts.scheme.lower() != "https":
        raise ToolInputError(
            f"only https:// URLs are fetched, not {parts.scheme or 'scheme-less'} URLs: {_short(url)!r}"
        )
    if "@" in parts.netloc:
        raise ToolInputError("URLs with credentials (user:password@host) are refused")
    if port not in (None, HTTPS_PORT):
        raise ToolInputError(f"only port {HTTPS_PORT} is allowed, not {port}")
    host = parts.hostname or ""
    if not host:
        raise ToolInputError(f"the URL {_short(url)!r} has no host")

    literal: IPAddress | None = None
    if "[" in parts.netloc:
        try:
            literal = ipaddress.IPv6Address(host)
        except ValueError:
            raise ToolInputError(f"the host [{host}] is not an IPv6 address") from None
        if literal.scope_id is not None:
            raise ToolInputError("IPv6 zone identifiers are refused")
        host_header = f"[{literal}]"
    else:
        if not host.isascii():
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError:
                raise ToolInputError(f"the host {host!r} is not a valid internationalized hostname") from None
        host = host.lower().removesuffix(".")
        literal = parse_ipv4_host(host)
        if literal is None and (len(host) > 253 or not _HOSTNAME.match(host)):
            raise ToolInputError(f"the host {host!r} is not a valid hostname")
        host_header = host
    if literal is not None:
        reason = blocked_reason(literal)
        if reason is not None:
            raise ToolInputError(f"refused {_short(url)!r}: {reason}")
        if host_header not in (str(literal), f"[{literal}]"):
            raise ToolInputError(f"refused the numeric host {host!r}: write IP addresses as {literal}")
        host = str(literal)

    path = quote(parts.path or "/", safe="/%!$&'()*+,;=:@~")
    if parts.query:
        path += "?" + quote(parts.query, safe="/%!$&'()*+,;=:@~?")
    return Target(url=f"https://{host_header}{path}", host=host, literal=literal, host_header=host_header, path=path)


# -- the real resolver and connection ---------------------------------------------------------


def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order."""
    addresses: list[str] = []
    for family, _, _, _, sockaddr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if family in (socket.AF_INET, socket.AF_INET6) and sockaddr[0] not in addresses:
            addresses.append(str(sockaddr[0]))
    return addresses


class PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address fixed in advance: TCP to ``ip``, TLS (SNI and certificate) for
    ``hostname``. The hostname is never resolved again, so DNS cannot change the peer."""

    def __init__(
        self,
        ip: str,
        hostname: str,
        *,
        timeout: float,
        port: int = HTTPS_PORT,
        context: ssl.SSLContext | None = None,
    ) -> None:
        self.pinned_ip = ip
        self.tls_hostname = hostname
        if context is None:
            context = ssl.create_default_context()  # verifies the certificate chain and the hostname
            context.set_alpn_protocols(["http/1.1"])
        self.tls_context = context
        super().__init__(hostname, port, timeout=timeout, context=self.tls_context)

    def connect(self) -> None:
        sock = socket.create_connection((self.pinned_ip, self.port), self.timeout)
        try:
            self.sock = self.tls_context.wrap_socket(sock, server_hostname=self.tls_hostname)
        except BaseException:
            sock.close()
            raise


class _DeadlineReader:
    """A response body read one receive at a time, each bounded by what is left of the budget."""

    def __init__(
        self,
        conn: http.client.HTTPConnection,
        sock: Any,
        response: http.client.HTTPResponse,
        deadline: float,
        watchdog: threading.Timer | None = None,
    ):
        self._conn, self._sock, self._response, self._deadline = conn, sock, response, deadline
        self._watchdog = watchdog

    def read(self, size: int) -> bytes:
        if self._response.isclosed():  # all read: the response has closed the socket already
            return b""
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the time budget ran out while reading the body")
        self._sock.settimeout(remaining)
        return self._response.read1(size)

    def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._response.close()
        self._conn.close()


def _abort(sock: Any) -> None:
    """The budget ran out: unblock whatever read is waiting on ``sock``."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def open_pinned(
    ip: str,
    hostname: str,
    path: str,
    headers: dict[str, str],
    timeout: float,
    *,
    port: int = HTTPS_PORT,
    context: ssl.SSLContext | None = None,
) -> tuple[int, dict[str, str], _DeadlineReader]:
    """GET ``path`` from ``ip`` speaking TLS for ``hostname``; the body is left unread."""
    deadline = time.monotonic() + timeout
    conn = PinnedHTTPSConnection(ip, hostname, timeout=timeout, port=port, context=context)
    watchdog = None
    try:
        conn.request("GET", path, headers=headers)
        sock = conn.sock
        sock.settimeout(max(deadline - time.monotonic(), 0.001))
        # Per-read timeouts do not bound a server that drips its headers a byte at a time:
        # a watchdog shuts the socket down when the whole budget is spent.
        watchdog = threading.Timer(max(deadline - time.monotonic(), 0.001), _abort, args=(sock,))
        watchdog.daemon = True
        watchdog.start()
        response = conn.getresponse()
    except BaseException:
        if watchdog is not None:
            watchdog.cancel()
        conn.close()
        raise
    return (
        response.status,
        joined_headers(response.getheaders()),
        _DeadlineReader(conn, sock, response, deadline, watchdog),
    )


def joined_headers(lines: list[tuple[str, str]]) -> dict[str, str]:
    """Header lines by lower-cased name, repeated lines joined with ", " as RFC 9110 allows
    (https://www.rfc-editor.org/rfc/rfc9110.html#section-5.3): a second ``Cache-Control``
    line (``no-store``, say) must not be lost by keeping only the last."""
    headers: dict[str, str] = {}
    for name, value in lines:
        key = name.lower()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


# -- HTTP caching (RFC 9111) ---------------------------------------------------------------------


class Exchange(NamedTuple):
    """One request of a fetch and its response, as the cache rules need them."""

    method: str
    request_headers: dict[str, str]
    status: int
    headers: dict[str, str]
    """The response's, names lower-cased."""
    request_time: float
    """Epoch seconds when the request was sent."""
    response_time: float
    """Epoch seconds when the response's headers arrived."""


class Freshness(NamedTuple):
    """How much longer a response may be reused, and whether by every user."""

    seconds: float
    """At most this long from now; 0: not at all (``reason`` says why)."""
    public: bool = False
    reason: str = ""


_DIRECTIVE = re.compile(r'\s*([^\s,=]+)\s*(?:=\s*("(?:[^"\\]|\\.)*"|[^,]*))?\s*(?:,|$)')
_DELTA_SECONDS = re.compile(r"^[0-9]+$")
# RFC 9111 section 1.2.2: a delta-seconds too large to represent is taken as 2^31.
_DELTA_MAX = 2_147_483_648
_CREDENTIAL_HEADERS = ("authorization", "cookie", "proxy-authorization")


def cache_directives(value: str) -> dict[str, str | None] | None:
    """Cache-Control directives by lower-cased name (``max-age`` → ``"60"``, ``public`` →
    None), or None when ``max-age`` or ``s-maxage`` is given twice: RFC 9111 section 4.2.1
    lets a cache consider such a response stale, and so it is here."""
    directives: dict[str, str | None] = {}
    for match in _DIRECTIVE.finditer(value):
        name, argument = match.group(1).lower(), match.group(2)
        if name in directives and name in ("max-age", "s-maxage"):
            return None
        directives[name] = argument.strip().strip('"') if argument is not None else None
    return directives


def _delta_seconds(value: str | None) -> int | None:
    """RFC 9111 section 1.2.2 delta-seconds, or None when invalid (``max-age=a``)."""
    if value is None or not _DELTA_SECONDS.match(value):
        return None
    return min(int(value), _DELTA_MAX)


def _http_date(value: str) -> float | None:
    """An HTTP-date (RFC 9110 section 5.6.7) in epoch seconds, or None when invalid."""
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed.timestamp() if parsed.tzinfo else parsed.replace(tzinfo=UTC).timestamp()


def _lifetime(headers: dict[str, str], directives: dict[str, str | None], date: float) -> float | str:
    """RFC 9111 section 4.2.1, for a shared cache: ``s-maxage``, else ``max-age``, else
    ``Expires`` minus ``Date``; no heuristic lifetime (section 4.2.2 allows one, never
    requires it). A string says why there is no lifetime."""
    for name in ("s-maxage", "max-age"):
        if name in directives:
            seconds = _delta_seconds(directives[name])
            # Invalid freshness information: "Caches are encouraged to consider responses that
            # have invalid freshness information ... to be stale" (section 4.2.1).
            return float(seconds) if seconds is not None else f"Cache-Control: {name} is not a number of seconds"
    if "expires" in headers:
        expires = _http_date(headers["expires"])
        # Section 5.3: an invalid Expires (such as "0") means "in the past".
        return max(0.0, expires - date) if expires is not None else 0.0
    return "no explicit freshness (Cache-Control max-age or s-maxage, or Expires)"


def freshness(exchange: Exchange, now: float) -> Freshness:
    """How much longer, from ``now`` (epoch seconds), a response may be reused, by the rules
    of RFC 9111 (https://www.rfc-editor.org/rfc/rfc9111.html) for a shared cache that never
    revalidates: it stores only what it may reuse without asking the origin again.

    * Section 3 (storing): the request method must be GET; the status final; no ``no-store``
      (section 5.2.2.5); a shared cache stores no ``private`` response (section 5.2.2.7).
      Stricter than section 3.5: a request with credentials (Authorization, Cookie) is never
      stored, even ``public``. ``private`` and ``no-cache`` with field names are taken as the
      whole response's.
    * Section 5.2.2.4: a ``no-cache`` response may not be reused without validation, which
      this cache never does, so it is not stored.
    * Section 4.1: ``Vary: *`` never matches a later request.
    * Sections 4.2.1 and 4.2.3: the freshness lifetime, less the response's current age
      (``Age``, the apparent age from ``Date``, the request's round trip, the time since).
    * Only ``public`` (section 5.2.2.9) shares a response between users; a ``Set-Cookie``
      response is kept to its user even then.
    """
    if exchange.method != "GET":
        return Freshness(0.0, reason=f"{exchange.method} responses are not reused")
    sent = {name.lower() for name in exchange.request_headers}
    if any(name in sent for name in _CREDENTIAL_HEADERS):
        return Freshness(0.0, reason="a request with credentials is not reused")
    if exchange.status < 200:
        return Freshness(0.0, reason=f"{exchange.status} is not a final response")
    headers = exchange.headers
    directives = cache_directives(headers.get("cache-control", ""))
    if directives is None:
        return Freshness(0.0, reason="Cache-Control repeats max-age or s-maxage")
    for name in ("no-store", "private", "no-cache"):
        if name in directives:
            return Freshness(0.0, reason=f"Cache-Control: {name}")
    if "*" in (v.strip() for v in headers.get("vary", "").split(",")):
        return Freshness(0.0, reason="Vary: *")
    # RFC 9110 section 6.6.1: a response without a (valid) Date is dated when it was received.
    date = _http_date(headers["date"]) if "date" in headers else None
    date_value = date if date is not None else exchange.response_time
    lifetime = _lifetime(headers, directives, date_value)
    if isinstance(lifetime, str):
        return Freshness(0.0, reason=lifetime)
    age_value = _delta_seconds(headers["age"]) if "age" in headers else 0
    if age_value is None:
        return Freshness(0.0, reason="Age is not a number of seconds")
    # Section 4.2.3: the current age.
    apparent_age = max(0.0, exchange.response_time - date_value)
    response_delay = exchange.response_time - exchange.request_time
    corrected_initial_age = max(apparent_age, age_value + response_delay)
    current_age = corrected_initial_age + max(0.0, now - exchange.response_time)
    remaining = lifetime - current_age
    if remaining <= 0:
        return Freshness(0.0, reason="stale when received")
    return Freshness(remaining, public="public" in directives and "set-cookie" not in headers)


def chain_freshness(exchanges: list[Exchange], now: float) -> Freshness:
    """A fetch's result stands for every response it went through (its redirects too): it is
    reusable as long as all of them are, and by every user only if each of them is."""
    verdicts = [freshness(exchange, now) for exchange in exchanges]
    refused = next((v for v in verdicts if v.seconds <= 0), None)
    if refused is not None:
        return refused
    return Freshness(min(v.seconds for v in verdicts), public=all(v.public for v in verdicts))


# -- the fetch ---------------------------------------------------------------------------------


class BodyReader(Protocol):
    def read(self, size: int, /) -> bytes: ...


Resolver = Callable[[str, int], list[str]]
Opener = Callable[[str, str, str, dict[str, str], float], tuple[int, dict[str, str], bytes | BodyReader]]

_TEXT_TYPES = frozenset({"application/json", "application/xml", "application/xhtml+xml"})
_MEDIA_TYPE = re.compile(r"^[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+$")
_NOT_FOUND_ERRORS = {getattr(socket, n) for n in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, n)}


def parse_content_type(value: str) -> tuple[str, str | None]:
    """``(media type, charset or None)`` of a Content-Type header; the type lower-cased."""
    media_type, *params = value.split(";")
    charset = None
    for param in params:
        key, _, param_value = param.partition("=")
        if key.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'") or None
    return media_type.strip().lower(), charset


def is_text_type(media_type: str) -> bool:
    if not _MEDIA_TYPE.match(media_type):
        return False
    return media_type.startswith("text/") or media_type in _TEXT_TYPES or media_type.endswith(("+json", "+xml"))


def decode_body(data: bytes, charset: str | None) -> str:
    try:
        return data.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset, or a codec that is not a text encoding
        return data.decode("utf-8", errors="replace")


def _json_size(text: str) -> int:
    return len(json.dumps(text, ensure_ascii=False).encode())


def fit_text(text: str, limit: int = MAX_BODY_JSON_BYTES) -> tuple[str, bool]:
    """The longest prefix of ``text`` whose JSON encoding fits in ``limit`` bytes, and whether
    it was cut (replacement characters and escapes make text larger than its bytes)."""
    if _json_size(text) <= limit:
        return text, False
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if _json_size(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return text[:low], True


class Fetcher(msgspec.Struct, frozen=True):
    """The fetch with its network edges injectable: ``resolve(host, port) -> [address, ...]``
    and ``open(ip, hostname, path, headers, timeout) -> (status, lower-cased headers, body)``,
    the body bytes or something with ``read(size)`` (and, optionally, ``close()``)."""

    resolve: Resolver = resolve_host
    open: Opener = open_pinned
    clock: Callable[[], float] = time.monotonic
    budget_seconds: float = TIME_BUDGET_SECONDS
    max_redirects: int = MAX_REDIRECTS
    wall_clock: Callable[[], float] = time.time
    """Epoch seconds, for the responses' ``Date`` and ``Expires``."""

    def fetch(self, url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
        return self.fetch_exchanges(url, max_bytes)[0]

    def fetch_reusable(self, url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> Reusable:
        """The fetch's result, with how long HTTP caching lets it be reused, and by whom."""
        result, exchanges = self.fetch_exchanges(url, max_bytes)
        verdict = chain_freshness(exchanges, self.wall_clock())
        return Reusable(result, verdict.seconds, public=verdict.public, reason=verdict.reason)

    def fetch_exchanges(self, url: str, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[dict[str, Any], list[Exchange]]:
        """The result, and each request and response of the fetch (redirects first)."""
        deadline = self.clock() + self.budget_seconds
        redirects = 0
        exchanges: list[Exchange] = []
        while True:
            target = parse_url(url)
            ip = self.validated_address(target)
            request_headers = self._headers(target)
            sent_at = self.wall_clock()
            status, headers, body = self._open(ip, target, request_headers, self._remaining(deadline))
            exchanges.append(Exchange("GET", request_headers, status, headers, sent_at, self.wall_clock()))
            try:
                if status in REDIRECT_STATUSES:
                    location = headers.get("location", "").strip()
                    if not location:
                        raise ToolInputError(f"{target.url} answered {status} without a Location")
                    if redirects >= self.max_redirects:
                        raise ToolInputError(f"refused: more than {self.max_redirects} redirects")
                    url, redirects = urljoin(target.url, location), redirects + 1
                    continue
                result = self._result(target, status, headers, body, max_bytes, deadline) | {"redirects": redirects}
                return result, exchanges
            finally:
                close = getattr(body, "close", None)
                if callable(close):
                    close()

    def validated_address(self, target: Target) -> str:
        """Rule 2: the address to connect to; every address of the host must be public."""
        if target.literal is not None:
            return str(target.literal)
        try:
            addresses = self.resolve(target.host, HTTPS_PORT)
        except socket.gaierror as error:
            if error.errno in _NOT_FOUND_ERRORS:
                raise ToolInputError(f"the host {target.host} does not exist ({error.strerror})") from None
            raise ToolTransientError(f"could not resolve {target.host}: {error.strerror}") from None
        except OSError as error:
            raise ToolTransientError(f"could not resolve {target.host}: {error}") from None
        if not addresses:
            raise ToolInputError(f"the host {target.host} has no addresses")
        for address in addresses:
            reason = blocked_reason(address)
            if reason is not None:
                raise ToolInputError(f"refused {target.host}: it resolves to {reason}")
        return next((a for a in addresses if ipaddress.ip_address(a).version == 4), addresses[0])

    def _remaining(self, deadline: float) -> float:
        remaining = deadline - self.clock()
        if remaining <= 0:
            raise ToolTransientError(f"the fetch took longer than {self.budget_seconds:g} s")
        return remaining

    @staticmethod
    def _headers(target: Target) -> dict[str, str]:
        return {
            "Host": target.host_header,
            "User-Agent": USER_AGENT,
            "Accept": ACCEPT,
            "Accept-Encoding": "identity",
            "Connection": "close",
        }

    def _open(
        self, ip: str, target: Target, headers: dict[str, str], timeout: float
    ) -> tuple[int, dict[str, str], bytes | BodyReader]:
        return self._network(target, lambda: self.open(ip, target.host, target.path, headers, timeout))

    def _network(self, target: Target, call: Callable[[], Any]) -> Any:
        """``call()``, its failures sorted into the model's mistakes and passing trouble."""
        try:
            return call()
        except (ToolInputError, ToolTransientError):
            raise
        except ssl.SSLCertVerificationError as error:
            raise ToolInputError(f"the TLS certificate of {target.host} is not valid: {error.verify_message}") from None
        except http.client.IncompleteRead:
            raise ToolTransientError(f"{target.url}: the connection closed before the body was complete") from None
        except OSError as error:  # resets, refusals, timeouts, TLS failures
            raise ToolTransientError(f"{target.url}: {type(error).__name__}: {error}") from None
        except http.client.HTTPException as error:
            raise ToolInputError(f"{target.url} sent a malformed HTTP response ({type(error).__name__})") from None

    def _result(
        self,
        target: Target,
        status: int,
        headers: dict[str, str],
        body: bytes | BodyReader,
        max_bytes: int,
        deadline: float,
    ) -> dict[str, Any]:
        if status >= 500 or status == 429:
            raise ToolTransientError(f"{target.url} answered {status}")
        encoding = headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):
            raise ToolInputError(f"{target.url} sent a {encoding}-encoded body, which is not fetched")
        media_type, charset = parse_content_type(headers.get("content-type", ""))
        if status in (204, 205, 304):
            return {"url": target.url, "status": status, "contentType": media_type, "body": "", "truncated": False}
        if not media_type:
            raise ToolInputError(f"{target.url} did not say what its content is (no Content-Type)")
        if not is_text_type(media_type):
            raise ToolInputError(f"{target.url} is {media_type[:100]!r}, not text; only text, JSON and XML are fetched")
        data, truncated = self._network(target, lambda: self._read(body, max_bytes, deadline))
        text, cut = fit_text(decode_body(data, charset))
        return {
            "url": target.url,
            "status": status,
            "contentType": media_type,
            "body": text,
            "truncated": truncated or cut,
        }

    def _read(self, body: bytes | BodyReader, max_bytes: int, deadline: float) -> tuple[bytes, bool]:
        """At most ``max_bytes`` of the body, and whether there was more."""
        if isinstance(body, bytes | bytearray | memoryview):
            data = bytes(body[: max_bytes + 1])
        else:
            chunks: list[bytes] = []
            size = 0
            while size <= max_bytes:
                self._remaining(deadline)
                chunk = body.read(min(READ_CHUNK, max_bytes + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
            data = b"".join(chunks)
        return data[:max_bytes], len(data) > max_bytes


FETCHER = Fetcher()


def run(ctx: ToolContext, request: HttpFetchInput) -> Reusable:
    return FETCHER.fetch_reusable(request.url, request.maxBytes)


def cache_key(request: HttpFetchInput) -> dict[str, Any] | None:
    """What identifies a fetch's result: the normalized URL (``https://Example.com:443/`` and
    ``https://example.com/`` are one) and the byte limit. None for a URL the fetch refuses
    anyway (one with credentials, say): such a request never reaches the cache."""
    try:
        return {"url": parse_url(request.url).url, "maxBytes": request.maxBytes}
    except ToolInputError:
        return None


TOOL = ToolDefinition(
    name="http_fetch",
    description=(
        "GET a public https:// URL and return its status, content type and text body (text, HTML, JSON or XML "
        f"only; at most maxBytes bytes; up to {MAX_REDIRECTS} redirects). Private and internal addresses are refused."
    ),
    input_type=HttpFetchInput,
    run=run,
    cache=ResultCache(max_age_seconds=MAX_CACHE_SECONDS, key=cache_key),
)
handler = TOOL.lambda_handler
