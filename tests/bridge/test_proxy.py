"""Trusted proxy headers as a pure function."""

from __future__ import annotations

from bridge._proxy import apply_proxy_headers, parse_networks

TRUSTED = parse_networks(["127.0.0.1", "10.0.0.0/8"])


def test_untrusted_peer_headers_are_ignored() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6"), (b"x-forwarded-proto", b"https")]
    view = apply_proxy_headers(headers, ("203.0.113.9", 5555), "http", ("127.0.0.1", 80), TRUSTED)
    assert (view.client, view.scheme, view.server) == (("203.0.113.9", 5555), "http", ("127.0.0.1", 80))


def test_x_forwarded_for_rightmost_untrusted_wins() -> None:
    headers = [
        (b"x-forwarded-for", b"6.6.6.6, 198.51.100.7, 10.1.2.3"),
        (b"x-forwarded-proto", b"https"),
        (b"x-forwarded-host", b"shop.example:8443"),
    ]
    view = apply_proxy_headers(headers, ("127.0.0.1", 40000), "http", ("127.0.0.1", 8080), TRUSTED)
    assert view.client == ("198.51.100.7", 0)
    assert view.scheme == "https"
    assert view.server == ("shop.example", 8443)


def test_forwarded_header() -> None:
    headers = [(b"forwarded", b'for=192.0.2.60;proto=https;host=example.com, for="[2001:db8::1]:4711"')]
    view = apply_proxy_headers(headers, ("10.0.0.5", 1), "http", None, TRUSTED)
    assert view.client == ("2001:db8::1", 0)
    assert view.scheme == "http"  # the last element names no proto


def test_forwarded_last_element_gives_proto_and_host() -> None:
    headers = [(b"forwarded", b"for=192.0.2.60;proto=https;host=example.com")]
    view = apply_proxy_headers(headers, ("10.0.0.5", 1), "http", None, TRUSTED)
    assert view == type(view)(("192.0.2.60", 0), "https", ("example.com", 443))


def test_bogus_proto_is_ignored() -> None:
    headers = [(b"x-forwarded-proto", b"gopher")]
    assert apply_proxy_headers(headers, ("127.0.0.1", 1), "http", None, TRUSTED).scheme == "http"


def test_no_networks_means_off() -> None:
    headers = [(b"x-forwarded-for", b"6.6.6.6")]
    assert apply_proxy_headers(headers, ("127.0.0.1", 1), "http", None, ()).client == ("127.0.0.1", 1)


def test_star_trusts_everyone() -> None:
    headers = [(b"x-forwarded-for", b"198.51.100.7")]
    view = apply_proxy_headers(headers, ("203.0.113.1", 1), "http", None, parse_networks(["*"]))
    assert view.client == ("198.51.100.7", 0)
