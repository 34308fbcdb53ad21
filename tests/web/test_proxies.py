"""Behind a reverse proxy: X-Forwarded-For/-Proto count only from TRUSTED_PROXIES
(returnprog/web/proxies.py); the client address the app keys its limits and audit on is
``request.remote_addr``."""
from __future__ import annotations

import pytest
from flask import request

from returnprog import create_app
from returnprog.web.proxies import parse_networks
from returnprog.web.sessions import client_ip

SPOOFED = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https"}


def build(tmp_path, trusted):
    app = create_app({"TESTING": True, "SECRET_KEY": "test-secret", "TRUSTED_PROXIES": trusted,
                      "DATABASE_URL": f"sqlite:///{tmp_path / 'unused.sqlite'}"})

    @app.get("/_test/peer")
    def peer():
        return {"client_ip": client_ip(), "remote_addr": request.remote_addr,
                "scheme": request.scheme}

    return app


def seen(app, peer: str, headers=None) -> dict:
    resp = app.test_client().get("/_test/peer", headers=headers or {},
                                 environ_base={"REMOTE_ADDR": peer})
    assert resp.status_code == 200
    return resp.get_json()


def test_forwarded_headers_from_an_untrusted_address_are_ignored(tmp_path):
    app = build(tmp_path, ["127.0.0.1", "10.8.0.0/16"])
    got = seen(app, "198.51.100.7", SPOOFED)
    assert got == {"client_ip": "198.51.100.7", "remote_addr": "198.51.100.7",
                   "scheme": "http"}


def test_forwarded_headers_from_a_trusted_proxy_are_honoured(tmp_path):
    app = build(tmp_path, ["127.0.0.1", "10.8.0.0/16"])
    for proxy in ("127.0.0.1", "10.8.3.4"):
        got = seen(app, proxy, SPOOFED)
        assert got == {"client_ip": "203.0.113.66", "remote_addr": "203.0.113.66",
                       "scheme": "https"}, proxy


def test_only_the_hop_the_proxy_added_counts(tmp_path):
    # A client sends its own X-Forwarded-For; nginx appends the real peer: only that counts.
    app = build(tmp_path, ["127.0.0.1"])
    got = seen(app, "127.0.0.1", {"X-Forwarded-For": "6.6.6.6, 198.51.100.7"})
    assert got["remote_addr"] == "198.51.100.7"


def test_without_trusted_proxies_nobody_can_set_the_address(tmp_path):
    app = build(tmp_path, [])
    for peer in ("127.0.0.1", "198.51.100.7"):
        assert seen(app, peer, SPOOFED)["remote_addr"] == peer


def test_trusted_proxies_from_the_environment_and_bad_entries(tmp_path):
    assert [str(n) for n in parse_networks("127.0.0.1, 10.0.0.0/8 ::1")] == \
        ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    assert parse_networks(None) == () and parse_networks([]) == ()
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        parse_networks(["10.0.0.0/8", "proxy.internal"])
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        build(tmp_path, 42)


def test_the_signing_link_shown_follows_port_unless_public_base_url_is_set(
        app, staff, ctx_for, monkeypatch):
    import html

    from returnprog.services import cases as case_service

    from ..conftest import intake
    from ..web_client import web_for
    from .test_signing_support import ADDRESS, adults_of

    monkeypatch.setenv("PORT", "5302")  # as `PORT=5302 make run` sets it for the workers
    web = web_for(app, staff.counsellor)

    def shown_address() -> str:
        reference = case_service.open_case(ctx_for(staff.counsellor), intake(1, 0)).reference
        signer = adults_of(app, reference)[0]
        resp = web.post(f"/cases/{reference}/signing-links",
                        {"participant_id": signer.id, "kind": "commitment"})
        assert resp.status_code == 200
        return html.unescape(ADDRESS.search(resp.get_data(as_text=True)).group(1))

    assert shown_address().startswith("http://127.0.0.1:5302/s/")
    app.config["PUBLIC_BASE_URL"] = "https://vrp.example.nl/"
    assert shown_address().startswith("https://vrp.example.nl/s/")
