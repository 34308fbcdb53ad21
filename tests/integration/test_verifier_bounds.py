"""The bounded seal check (returnprog.verifier) against the hostile-PDF corpus of issue 10:
every file gets a verdict, a file that needs more than the limits is stopped by the limit
it hit (CPU time, address space, wall clock) and answered "could not be checked", a normal
sealed document still checks clean, the child never grows the caller's memory, and the
machine-wide cap refuses a check when every slot is taken."""
from __future__ import annotations

import fcntl
import io
import os

import pypdf
import pytest

from returnprog import documents, verifier

from ..hostile_pdfs import CORPUS, deep_field_chain


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def seal(tmp_path_factory):
    return documents.ensure_dev_seal(tmp_path_factory.mktemp("seal"))


@pytest.fixture(scope="module")
def sealed(seal):
    writer = pypdf.PdfWriter()
    writer.add_blank_page(595, 842)
    buf = io.BytesIO()
    writer.write(buf)
    return documents.seal_pdf(buf.getvalue(), seal, reason="test")


@pytest.fixture(scope="module")
def corpus():
    return {name: build() for name, build in CORPUS.items()}


def test_the_corpus_is_what_the_issue_describes(corpus):
    assert corpus["deep field chain"].count(b"/Kids") == 49_999 + 1  # + the page tree
    assert 4_000_000 < len(corpus["deep field chain"]) < 5 * 1024 * 1024
    assert corpus["object stream bomb"].count(b"/ObjStm") == 60
    assert corpus["huge xref"].count(b" f \n") > 200_000
    assert all(len(data) <= 5 * 1024 * 1024 for data in corpus.values())  # under the upload cap


def test_every_hostile_file_gets_a_verdict_and_the_callers_memory_does_not_grow(
        seal, sealed, corpus):
    limits = verifier.Limits(cpu_seconds=2, memory_mb=512, timeout_seconds=30)
    good = verifier.check(sealed, [seal.cert_pem], limits=limits)  # warms the fork server
    assert good.stopped is None and good.result.reasons == []
    assert good.child_pid != os.getpid()
    before = _rss_kb()
    for _ in range(2):
        for name, data in corpus.items():
            checked = verifier.check(data, [seal.cert_pem], limits=limits)
            assert not checked.result.valid and checked.result.reasons, name
            if checked.stopped:
                assert checked.result.reasons == [verifier.REASON_UNCHECKED], name
            else:
                assert checked.child_maxrss_kb < limits.memory_mb * 1024, name
    # Parsed in this process, the chain alone takes ~45 MB more; in the child it costs the
    # caller nothing but the upload's bytes.
    assert _rss_kb() - before < 20 * 1024
    again = verifier.check(sealed, [seal.cert_pem], limits=limits)
    assert again.stopped is None and again.result.reasons == []


def test_the_cpu_limit_stops_a_long_parse(seal):
    # Three times the issue's chain (past the upload cap, which is not the point here):
    # several CPU seconds on any machine, so the 1 s limit surely bites.
    chain = deep_field_chain(150_000)
    limits = verifier.Limits(cpu_seconds=1, memory_mb=1024, timeout_seconds=120)
    checked = verifier.check(chain, [seal.cert_pem], limits=limits)
    assert checked.stopped == verifier.STOPPED_CPU, checked
    assert checked.result.reasons == [verifier.REASON_UNCHECKED]
    assert checked.result.sha256 is not None  # the hash is still known


def test_the_memory_limit_stops_a_parse_that_needs_more_and_a_normal_file_still_checks(
        seal, sealed, corpus):
    # A normal file checks under the default limits; the hostile ones, under a limit just
    # above what the (lean, lazily importing) child starts with, are stopped by it.
    assert verifier.check(sealed, [seal.cert_pem]).result.reasons == []
    limits = verifier.Limits(cpu_seconds=60, memory_mb=130, timeout_seconds=120)
    for name in ("deep field chain", "huge xref"):
        checked = verifier.check(corpus[name], [seal.cert_pem], limits=limits)
        assert checked.stopped == verifier.STOPPED_MEMORY, (name, checked)
        assert checked.result.reasons == [verifier.REASON_UNCHECKED]


def test_the_wall_clock_timeout_kills_the_child(seal, corpus):
    limits = verifier.Limits(cpu_seconds=120, memory_mb=512, timeout_seconds=0.3)
    checked = verifier.check(corpus["deep field chain"], [seal.cert_pem], limits=limits)
    assert checked.stopped == verifier.STOPPED_TIMEOUT
    assert checked.result.reasons == [verifier.REASON_UNCHECKED]
    with pytest.raises(ProcessLookupError):
        os.kill(checked.child_pid, 0)  # killed and reaped, not left running


def test_a_check_is_refused_when_every_slot_of_the_machine_is_taken(seal, sealed, tmp_path):
    limits = verifier.Limits(max_concurrent=2, slots_dir=str(tmp_path / "slots"))
    assert verifier.check(sealed, [seal.cert_pem], limits=limits).result.reasons == []
    held = []
    try:
        for number in range(2):  # as two other workers would
            fd = os.open(tmp_path / "slots" / f"verify-slot-{number}.lock",
                         os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(fd)
        with pytest.raises(verifier.Busy):
            verifier.check(sealed, [seal.cert_pem], limits=limits)
        os.close(held.pop())  # one worker finishes
        assert verifier.check(sealed, [seal.cert_pem], limits=limits).result.reasons == []
    finally:
        for fd in held:
            os.close(fd)
    assert oct((tmp_path / "slots").stat().st_mode & 0o777) == "0o700"


def test_the_parent_accepts_only_a_plain_json_verdict_from_the_child():
    """A child that parsed a hostile file is not trusted to send a pickle (which would
    run code in the web worker): only JSON of the expected shape is read."""
    import json
    import pickle

    good = {"status": "done", "reasons": [], "sha256": "ab" * 32, "sealed_by": "DTenV",
            "sealed_at": "2026-12-01T10:00:00+00:00", "maxrss_kb": 90_000}
    assert verifier._answer(json.dumps(good).encode()) == good
    assert verifier._result(good).sealed_at.year == 2026
    for bad in (pickle.dumps(good), b"not json", json.dumps([1]).encode(),
                json.dumps({**good, "reasons": [1]}).encode(),
                json.dumps({**good, "sealed_by": {"x": 1}}).encode(),
                json.dumps({"status": "stopped", "stopped": "anything"}).encode(),
                json.dumps({**good, "status": "valid"}).encode()):
        assert verifier._answer(bad) is None, bad
