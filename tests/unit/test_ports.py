"""The ports ``make run`` checks before it starts anything (returnprog/ports.py), and the
public base URL that follows PORT (returnprog/config.py)."""
from __future__ import annotations

import socket

import pytest

from returnprog import config, ports


@pytest.fixture
def busy():
    """A port someone listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def env(tmp_path, **extra):
    return {"RETURNPROG_INSTANCE_PATH": str(tmp_path / "instance"), **extra}


def test_a_busy_web_port_is_refused_naming_port(tmp_path, busy):
    with pytest.raises(ports.PortProblem) as exc:
        ports.plan(busy, env(tmp_path))
    assert f"PORT {busy} is already in use" in str(exc.value)


@pytest.mark.parametrize("value", ["abc", "0", "70000", ""])
def test_a_web_port_that_is_no_port_is_refused_naming_port(tmp_path, value):
    with pytest.raises(ports.PortProblem, match=r"^PORT="):
        ports.plan(value, env(tmp_path))


def test_unset_sink_port_takes_a_free_one_when_the_usual_is_busy_and_tells_the_scheduler(
        tmp_path, busy, monkeypatch):
    monkeypatch.setattr(config.Defaults, "SMTP_PORT", busy)
    web = ports.free_port()
    out = ports.plan(web, env(tmp_path))
    chosen = int(out["RETURNPROG_SINK_PORT"])
    assert chosen not in (busy, web) and ports.is_free(chosen)
    assert out["RETURNPROG_SMTP_PORT"] == out["RETURNPROG_SINK_PORT"]  # scheduler and sink agree
    assert out["PORT"] == str(web)


def test_a_busy_sink_port_set_in_the_environment_is_refused_naming_the_setting(tmp_path, busy):
    with pytest.raises(ports.PortProblem) as exc:
        ports.plan(ports.free_port(), env(tmp_path, RETURNPROG_SMTP_PORT=str(busy)))
    assert f"SMTP_PORT {busy}" in str(exc.value) and "RETURNPROG_SMTP_PORT" in str(exc.value)


def test_a_busy_sink_port_set_in_instance_config_is_refused(tmp_path, busy):
    (tmp_path / "instance").mkdir()
    (tmp_path / "instance" / "config.py").write_text(f"SMTP_PORT = {busy}\n")
    with pytest.raises(ports.PortProblem, match=f"SMTP_PORT {busy}"):
        ports.plan(ports.free_port(), env(tmp_path))


def test_a_free_sink_port_that_was_set_is_kept(tmp_path):
    smtp = ports.free_port()
    out = ports.plan(ports.free_port(), env(tmp_path, RETURNPROG_SMTP_PORT=str(smtp)))
    assert out["RETURNPROG_SINK_PORT"] == out["RETURNPROG_SMTP_PORT"] == str(smtp)


def test_mail_to_another_host_leaves_the_schedulers_port_alone(tmp_path):
    out = ports.plan(ports.free_port(), env(tmp_path, RETURNPROG_SMTP_HOST="smtp.example.org",
                                            RETURNPROG_SMTP_PORT="587"))
    assert "RETURNPROG_SMTP_PORT" not in out
    assert out["RETURNPROG_SINK_PORT"] != "587"


def test_main_prints_shell_assignments_or_one_line_and_exit_1(tmp_path, busy, capsys,
                                                              monkeypatch):
    monkeypatch.setenv("RETURNPROG_INSTANCE_PATH", str(tmp_path / "instance"))
    monkeypatch.delenv("RETURNPROG_SMTP_PORT", raising=False)
    web = ports.free_port()
    assert ports.main([str(web)]) == 0
    assert f"export PORT={web}" in capsys.readouterr().out.splitlines()
    assert ports.main([str(busy)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1


def test_public_base_url_follows_port_unless_set():
    assert config.public_base_url({}, {}) == "http://127.0.0.1:5000"
    assert config.public_base_url({"PUBLIC_BASE_URL": None}, {"PORT": "5302"}) == \
        "http://127.0.0.1:5302"
    assert config.public_base_url({"PUBLIC_BASE_URL": "https://vrp.example.nl/"},
                                  {"PORT": "5302"}) == "https://vrp.example.nl"


def test_instance_path_comes_from_the_environment_as_an_absolute_path(tmp_path, monkeypatch):
    assert config.instance_path({}) is None
    monkeypatch.chdir(tmp_path)
    assert config.instance_path({"RETURNPROG_INSTANCE_PATH": "inst"}) == str(tmp_path / "inst")
