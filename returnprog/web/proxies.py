"""The client's address behind a reverse proxy: ``X-Forwarded-For`` and ``X-Forwarded-Proto``
are believed only when the request comes from one of ``TRUSTED_PROXIES``.

Werkzeug's ``ProxyFix`` trusts whoever connects; in front of it this middleware checks the
connecting address (``REMOTE_ADDR``) against the configured proxies, so a client that talks
to gunicorn directly cannot pick its own address (which the rate limits and the audit trail
key on). One proxy hop is assumed (nginx in front of gunicorn, as in ``deploy/``).
"""
from __future__ import annotations

import ipaddress

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES`` as networks: a list, or a string of addresses/CIDRs separated by
    commas or spaces. Raises ValueError naming the setting for anything else."""
    if value is None:
        return ()
    items = value.replace(",", " ").split() if isinstance(value, str) else value
    if not isinstance(items, (list, tuple, set)):
        raise ValueError(f"TRUSTED_PROXIES must be a list of addresses or CIDRs, not {value!r}")
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an address or CIDR") from None
    return tuple(networks)


class TrustedProxyFix:
    """WSGI middleware: ``ProxyFix`` (one hop of ``X-Forwarded-For`` and ``-Proto``) for
    requests from a trusted proxy; every other request passes unchanged, its forwarded
    headers ignored."""

    def __init__(self, wsgi_app, networks, x_for: int = 1, x_proto: int = 1):
        self.wsgi_app = wsgi_app
        self.networks = tuple(networks)
        self.fixed = ProxyFix(wsgi_app, x_for=x_for, x_proto=x_proto)

    def trusted(self, address: str | None) -> bool:
        """True when ``address`` (the connecting peer) is one of the trusted proxies."""
        try:
            ip = ipaddress.ip_address((address or "").strip())
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self.networks if net.version == ip.version)

    def __call__(self, environ, start_response):
        if self.trusted(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.wsgi_app(environ, start_response)


def init_app(app: Flask) -> None:
    """Wrap the app in :class:`TrustedProxyFix` when ``TRUSTED_PROXIES`` names any proxy."""
    networks = parse_networks(app.config.get("TRUSTED_PROXIES"))
    if networks:
        app.wsgi_app = TrustedProxyFix(app.wsgi_app, networks)
