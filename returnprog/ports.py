"""Ports for ``make run``, checked before anything starts (``scripts/run.sh`` runs
``python -m returnprog.ports PORT``).

- The web ``PORT`` must be free on 127.0.0.1; a busy one stops the start with one line that
  names ``PORT``.
- The development mail sink listens on ``SMTP_PORT`` when the scheduler delivers to this
  machine (``SMTP_HOST`` local). Set explicitly (``RETURNPROG_SMTP_PORT`` or
  ``instance/config.py``) and busy: one line naming the setting. Not set: 8025 when free,
  else a free port chosen here — and then handed to the scheduler as well, through
  ``RETURNPROG_SMTP_PORT`` in the environment of both.

On success it prints shell assignments for ``run.sh`` to ``eval``; on a problem it prints
the message to standard error and exits 1.
"""
from __future__ import annotations

import os
import shlex
import socket
import sys

from flask import Config

from .config import PREFIX, Defaults, env_overrides, instance_path

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
SMTP_PORT_VARIABLE = PREFIX + "SMTP_PORT"


class PortProblem(Exception):
    """A port that cannot be used, with the message for the operator."""


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when ``host:port`` can be bound right now (nobody listens there)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel reports free on ``host``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def parse_port(value, setting: str) -> int:
    """``value`` as a TCP port, or PortProblem naming ``setting``."""
    try:
        port = int(str(value).strip())
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise PortProblem(f"{setting}={value!r} is not a port number (1-65535)")
    return port


def settings(environ=None, root: str | None = None) -> dict:
    """The configuration as ``create_app`` reads it (defaults, ``instance/config.py``,
    ``RETURNPROG_*``), without building the app."""
    environ = os.environ if environ is None else environ
    folder = instance_path(environ) or os.path.join(root or os.getcwd(), "instance")
    cfg = Config(folder)
    cfg.from_object(Defaults)
    cfg.from_pyfile("config.py", silent=True)
    cfg.update(env_overrides(environ))
    cfg["_SMTP_PORT_SET"] = (SMTP_PORT_VARIABLE in environ
                             or cfg.get("SMTP_PORT") != Defaults.SMTP_PORT)
    return cfg


def plan(web_port, environ=None, root: str | None = None) -> dict[str, str]:
    """The environment ``run.sh`` exports: ``PORT``, the sink's port
    ``RETURNPROG_SINK_PORT`` and, when the scheduler delivers to the sink,
    ``RETURNPROG_SMTP_PORT``. Raises PortProblem with the operator's message."""
    port = parse_port(web_port, "PORT")
    if not is_free(port):
        raise PortProblem(f"PORT {port} is already in use on 127.0.0.1: stop what listens "
                          f"there or choose another, e.g. PORT={port + 1} make run")
    cfg = settings(environ, root)
    out = {"PORT": str(port)}
    local = str(cfg.get("SMTP_HOST") or "127.0.0.1") in LOCAL_HOSTS
    if local and cfg["_SMTP_PORT_SET"]:
        smtp = parse_port(cfg.get("SMTP_PORT"), "SMTP_PORT")
        if smtp == port:
            raise PortProblem(f"SMTP_PORT {smtp} ({SMTP_PORT_VARIABLE}) is the web PORT too: "
                              "give the mail sink a port of its own")
        if not is_free(smtp):
            raise PortProblem(f"SMTP_PORT {smtp} ({SMTP_PORT_VARIABLE}) for the mail sink is "
                              f"already in use on 127.0.0.1: stop what listens there or set "
                              f"{SMTP_PORT_VARIABLE} to a free port")
    else:
        # Nobody asked for a port (or mail goes elsewhere): the usual one, or any free one.
        smtp = Defaults.SMTP_PORT
        if smtp == port or not is_free(smtp):
            smtp = free_port()
    out["RETURNPROG_SINK_PORT"] = str(smtp)
    if local:
        out[SMTP_PORT_VARIABLE] = str(smtp)  # the scheduler delivers where the sink listens
    return out


def main(argv=None) -> int:
    """``python -m returnprog.ports PORT``: shell assignments, or a message and exit 1."""
    argv = sys.argv[1:] if argv is None else argv
    try:
        assignments = plan(argv[0] if argv else os.environ.get("PORT", "5000"))
    except PortProblem as exc:
        print(f"returnprog: {exc}", file=sys.stderr)
        return 1
    for key, value in assignments.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
