"""The production examples in deploy/ name only things that exist. Docker cannot run here,
so this checks what can be checked without it: the compose file parses, every command,
module, option and setting the examples name exists (gunicorn checks its own options and
loads ``wsgi:app``), the proxy's address is the one trusted, and nginx forwards the
client's address and scheme to the port gunicorn binds."""
from __future__ import annotations

import configparser
import ipaddress
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from returnprog import create_app
from returnprog.config import Defaults
from returnprog.web.proxies import parse_networks

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
APP_SERVICES = ("migrate", "web", "scheduler")
SOURCE = "\n".join(p.read_text() for p in (ROOT / "returnprog").rglob("*.py"))


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # systemd keys are case-sensitive
    parser.read(DEPLOY / "systemd" / name)
    return parser


def commands() -> list[list[str]]:
    """Every command line the examples run (compose services and systemd units)."""
    out = []
    compose_file = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for name in APP_SERVICES:
        command = compose_file["services"][name]["command"]
        assert command[:2] == ["sh", "-c"] and command[2].startswith("umask 077 && exec ")
        out.append(shlex.split(command[2].removeprefix("umask 077 && exec ")))
    for name in ("returnprog-web.service", "returnprog-scheduler.service"):
        service = unit(name)["Service"]
        for key in ("ExecStartPre", "ExecStart"):
            if key in service:
                argv = shlex.split(service[key])
                assert argv[0].startswith("/opt/returnprog/.venv/bin/")
                out.append([Path(argv[0]).name, *argv[1:]])
    return out


def test_compose_has_the_services_and_only_the_proxy_publishes_ports(compose):
    services = compose["services"]
    assert set(services) == {"db", "migrate", "web", "scheduler", "proxy"}
    assert [n for n, s in services.items() if "ports" in s] == ["proxy"]
    for name in ("web", "scheduler"):
        assert services[name]["depends_on"]["migrate"]["condition"] == \
            "service_completed_successfully"
        assert services[name]["environment"]["RETURNPROG_DATABASE_URL"].startswith(
            "postgresql+psycopg://")
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for path in (services["proxy"]["volumes"][0].split(":")[0],
                 services["web"]["build"]["context"] + "/" + services["web"]["build"]["dockerfile"]):
        assert (DEPLOY / path).exists(), path


def test_every_flask_command_and_gunicorn_app_named_exists():
    app = create_app({"TESTING": True, "SECRET_KEY": "x", "DATABASE_URL": "sqlite://"})
    seen = set()
    for argv in commands():
        if argv[0] == "flask":
            assert argv[1:3] == ["--app", "wsgi"]
            assert argv[3] in app.cli.commands, argv
            seen.add(argv[3])
        else:
            assert argv[0] == "gunicorn" and argv[-1] == "wsgi:app", argv
            seen.add("gunicorn")
    assert seen == {"init-db", "scheduler", "gunicorn"}


def test_gunicorn_accepts_the_options_and_loads_the_app():
    lines = {tuple(a[1:]) for a in commands() if a[0] == "gunicorn"}
    assert len(lines) == 2  # systemd (127.0.0.1) and compose (0.0.0.0 in its container)
    for args in lines:
        result = subprocess.run([str(ROOT / ".venv/bin/gunicorn"), "--check-config", *args],
                                cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr


def settings_named() -> set[str]:
    names = set()
    texts = [(DEPLOY / "compose.yaml").read_text(), (DEPLOY / "returnprog.env.example").read_text(),
             (DEPLOY / "compose.env.example").read_text(), (DEPLOY / "Dockerfile").read_text()]
    texts += [p.read_text() for p in (DEPLOY / "systemd").glob("*.service")]
    for text in texts:
        names |= set(re.findall(r"RETURNPROG_([A-Z_]+)", text))
    return names


def test_every_setting_named_is_one_the_app_reads():
    names = settings_named()
    assert {"ENV_NAME", "SECRET_KEY", "DATABASE_URL", "PUBLIC_BASE_URL", "TRUSTED_PROXIES",
            "SEAL_KEY_PATH", "SEAL_CERT_PATH", "INSTANCE_PATH"} <= names
    for name in names - {"INSTANCE_PATH"}:  # read before the app exists (config.instance_path)
        assert hasattr(Defaults, name) or f'"{name}"' in SOURCE, name


def test_the_trusted_proxy_is_the_proxy_container_and_nobody_else(compose):
    proxy_ip = ipaddress.ip_address(
        compose["services"]["proxy"]["networks"]["backend"]["ipv4_address"])
    subnet = ipaddress.ip_network(compose["networks"]["backend"]["ipam"]["config"][0]["subnet"])
    assert proxy_ip in subnet
    for name in APP_SERVICES:
        trusted = parse_networks(yaml.safe_load(
            compose["services"][name]["environment"]["RETURNPROG_TRUSTED_PROXIES"]))
        assert trusted == (ipaddress.ip_network(f"{proxy_ip}/32"),)
    # As systemd's EnvironmentFile reads it (single quotes kept literally, then removed),
    # and then as the app reads a RETURNPROG_ value (JSON).
    env = dict(line.split("=", 1) for line in (DEPLOY / "returnprog.env.example").read_text()
               .splitlines() if line and not line.startswith("#"))
    values = {k: json.loads(shlex.split(v)[0]) for k, v in env.items()
              if k in ("RETURNPROG_TRUSTED_PROXIES", "RETURNPROG_SEPA_DEBTOR")}
    assert [str(n) for n in parse_networks(values["RETURNPROG_TRUSTED_PROXIES"])] == \
        ["127.0.0.1/32"]
    assert set(values["RETURNPROG_SEPA_DEBTOR"]) == {"name", "iban", "bic"}


@pytest.mark.parametrize("conf, upstream", [("returnprog.conf", "127.0.0.1:8000"),
                                            ("compose.conf", "web:8000")])
def test_nginx_forwards_address_and_scheme_to_where_gunicorn_listens(conf, upstream):
    text = (DEPLOY / "nginx" / conf).read_text()
    assert text.count("{") == text.count("}")
    assert re.search(rf"upstream returnprog_web \{{\s*server {re.escape(upstream)};", text)
    blocks = re.findall(r"location [^{]+\{([^}]*)\}", text)
    assert blocks
    for block in blocks:
        assert "proxy_pass http://returnprog_web;" in block
        assert "proxy_set_header X-Forwarded-For $remote_addr;" in block
        assert "proxy_set_header X-Forwarded-Proto $scheme;" in block
    assert "$request_uri" not in text.split("log_format", 1)[1].split(";", 1)[0]  # no tokens
    port = upstream.rsplit(":", 1)[1]
    binds = [a[a.index("--bind") + 1] for a in commands() if a[0] == "gunicorn"]
    assert all(b.endswith(f":{port}") for b in binds), binds


def test_systemd_units_keep_files_private_and_restart():
    for name in ("returnprog-web.service", "returnprog-scheduler.service"):
        service = unit(name)["Service"]
        assert service["UMask"] == "0077"
        assert service["Restart"] == "always"
        assert service["Environment"] == "RETURNPROG_INSTANCE_PATH=/var/lib/returnprog"
        assert service["StateDirectoryMode"] == "0700"
        assert service["User"] == "returnprog"


def test_the_image_copies_what_exists_and_installs_the_documented_libraries():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (\S+)", dockerfile, flags=re.M):
        assert (ROOT / source).exists(), source
    deps = (ROOT / "scripts" / "system-deps.sh").read_text()
    installed = re.search(r"--no-install-recommends ([^&]+)&&", dockerfile).group(1).split()
    for package in installed:
        assert package in deps, package
