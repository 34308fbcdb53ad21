"""Bounded seal checks: the cryptographic check of an uploaded PDF runs in a child process
with a CPU-time limit, an address-space limit and a hard wall-clock timeout, and at most
``max_concurrent`` checks run at once on the machine.

Why: parsing a hostile PDF (a 50,000-deep field chain, a huge cross-reference table) costs
seconds of CPU inside pyHanko/pypdf. Done in a sync web worker, four anonymous uploads in
parallel stalled every page of the service. Here the worker only waits — at most
``timeout_seconds`` — while a child does the parsing under ``setrlimit``; a file that needs
more than the limits allow is answered ``REASON_UNCHECKED`` ("could not be checked"), the
child is killed, and the web worker is free again.

Design:

* Children come from a ``multiprocessing`` **forkserver** whose server process has
  ``returnprog.documents`` (pyHanko, pypdf) imported already: a check forks a warm process
  (a few milliseconds) instead of importing pyHanko afresh (``spawn``: about a second), and
  — unlike a plain ``fork`` of the web worker — the child inherits none of the worker's
  database connections, sockets or session state. Each check gets a fresh child that
  exits afterwards, so nothing one hostile file did to memory survives into the next check.
* The child gets only bytes (the PDF, the trusted certificates) and returns only the
  cryptographic verdict and the SHA-256, as plain JSON of a checked shape (never a pickle:
  a process that parsed a hostile file is not trusted to run code in the web worker); the
  register lookup by hash happens in the parent (``documents.complete_with_register``).
* The machine-wide cap is ``max_concurrent`` slot files in ``slots_dir`` (the instance
  folder), each taken with a non-blocking ``fcntl.flock``: it holds across all gunicorn
  workers and is released by the kernel when a worker dies. No slot free → :class:`Busy`
  (the page answers 503 with ``Retry-After``).

Flask-free and database-free; ``services.verification`` is the caller.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from . import documents

log = logging.getLogger(__name__)

__all__ = ["Busy", "Checked", "Limits", "REASON_UNCHECKED", "Slot", "check", "claim",
           "warm_up"]

REASON_UNCHECKED = ("the file could not be checked: checking it needs more time or memory "
                    "than the check allows (it may be damaged or built to overload the check)")

# Why a check was stopped (``Checked.stopped``); for logs and metrics, not for the page.
STOPPED_CPU = "cpu"
STOPPED_MEMORY = "memory"
STOPPED_TIMEOUT = "timeout"
STOPPED_CRASHED = "crashed"

# Exit status of a child that ran out of memory even for its answer.
EXIT_OUT_OF_MEMORY = 75
RESERVE_BYTES = 4 * 1024 * 1024
# The child's answer is a verdict, a hash and a certificate subject: a few KB at most.
MAX_ANSWER_BYTES = 1024 * 1024

# The child's priority is lowered so that, on a small machine, the web workers answering
# ordinary pages win the CPU over a long check.
CHILD_NICENESS = 10


@dataclass(frozen=True)
class Limits:
    """The bounds of one check. ``memory_mb`` caps the child's whole address space
    (``RLIMIT_AS``; the warm child starts at about 125 MB of it, and a normal sealed
    document is checked within 150 MB);
    ``cpu_seconds`` its CPU time (``RLIMIT_CPU``); ``timeout_seconds`` the wall-clock wait
    after which the parent kills it. ``slots_dir`` None means no machine-wide cap (tests,
    one-off scripts)."""

    cpu_seconds: float = 5.0
    memory_mb: int = 768
    timeout_seconds: float = 10.0
    max_concurrent: int = 1
    slots_dir: str | None = None


@dataclass
class Checked:
    """What the child found: ``result`` (a ``documents.check_seal`` answer, not yet
    completed with the register) and, when the check was cut short, ``stopped`` (one of
    ``STOPPED_*``; then ``result.reasons == [REASON_UNCHECKED]``). ``child_maxrss_kb`` is
    the child's peak resident size when it finished on its own."""

    result: documents.VerificationResult
    stopped: str | None = None
    child_pid: int | None = None
    child_maxrss_kb: int | None = None


class Busy(Exception):
    """Every check slot of the machine is taken; try again in a moment."""


_CONTEXT = None


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        ctx = multiprocessing.get_context("forkserver")
        # "__main__" first: the server imports the main script once, so that each child
        # does not run it again (multiprocessing re-imports the main module in children).
        ctx.set_forkserver_preload(["__main__", "returnprog.documents", "returnprog.verifier",
                                    "returnprog.verifier_warmup"])
        _CONTEXT = ctx
    return _CONTEXT


def warm_up() -> None:
    """Start this process's fork server now (it imports pyHanko once, about a second), so
    the first upload does not pay for it."""
    from multiprocessing import forkserver

    _context()
    forkserver.ensure_running()


class Slot:
    """One of the machine's check slots, held until :meth:`release` (or the end of a
    ``with`` block); a process that dies releases it too (the kernel drops the lock)."""

    def __init__(self, fd: int | None):
        self._fd = fd

    def release(self) -> None:
        """Give the slot back (closing the descriptor drops the lock); idempotent."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> "Slot":
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def claim(limits: Limits) -> Slot | None:
    """Take a free check slot of the machine without waiting, or None when all
    ``limits.max_concurrent`` are taken. Without ``slots_dir`` there is no cap (a slot
    that holds nothing)."""
    if not limits.slots_dir:
        return Slot(None)
    folder = Path(limits.slots_dir)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for number in range(max(1, int(limits.max_concurrent))):
        fd = os.open(folder / f"verify-slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                continue
            raise
        return Slot(fd)
    return None


def _child_main(conn, cpu_seconds: float, memory_bytes: int) -> None:
    """Entry point of the check process: limit itself, read the request, check, answer."""
    try:
        os.nice(CHILD_NICENESS)
    except OSError:
        pass
    cpu = max(1, int(round(cpu_seconds)))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Over the soft limit the kernel sends SIGXCPU (which ends the process); the hard
    # limit one second later is SIGKILL for a process that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    # Address space kept back so that the answer "out of memory" can still be sent.
    reserve = None
    outcome = None
    try:
        reserve = bytearray(RESERVE_BYTES)
        pdf = conn.recv_bytes()
        seal_pems, tsa_pems = conn.recv()
        result = documents.check_seal(pdf, seal_pems, tsa_cert_pem_list=tsa_pems)
        outcome = {"status": "done", "reasons": list(result.reasons), "sha256": result.sha256,
                   "sealed_by": result.sealed_by,
                   "sealed_at": result.sealed_at.isoformat() if result.sealed_at else None}
    except MemoryError:
        pass  # answered below, once the traceback and its frames are gone
    except RecursionError:
        outcome = {"status": "stopped", "stopped": STOPPED_CRASHED}
    del reserve
    if outcome is None:
        outcome = {"status": "stopped", "stopped": STOPPED_MEMORY}
    try:
        outcome["maxrss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        # Plain JSON, not a pickle: the parent must not run whatever a child that parsed
        # a hostile file might send.
        conn.send_bytes(json.dumps(outcome).encode())
        conn.close()
    except MemoryError:
        os._exit(EXIT_OUT_OF_MEMORY)


def _answer(message: bytes) -> dict | None:
    """The child's JSON answer, checked for shape; None when it makes no sense."""
    try:
        answer = json.loads(message)
    except ValueError:
        return None
    if not isinstance(answer, dict) or answer.get("status") not in ("done", "stopped"):
        return None
    if answer["status"] == "stopped":
        return answer if answer.get("stopped") in (STOPPED_MEMORY, STOPPED_CRASHED) else None
    reasons = answer.get("reasons")
    if not (isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        return None
    for key in ("sha256", "sealed_by", "sealed_at"):
        if answer.get(key) is not None and not isinstance(answer[key], str):
            return None
    if not isinstance(answer.get("maxrss_kb"), int):
        return None
    return answer


def _result(answer: dict) -> documents.VerificationResult:
    sealed_at = answer.get("sealed_at")
    return documents.VerificationResult(
        valid=False, reasons=list(answer["reasons"]), sha256=answer.get("sha256"),
        sealed_by=answer.get("sealed_by"),
        sealed_at=dt.datetime.fromisoformat(sealed_at) if sealed_at else None)


def _unchecked(pdf_bytes: bytes, stopped: str, pid: int | None) -> Checked:
    sha = hashlib.sha256(pdf_bytes).hexdigest() if pdf_bytes.startswith(b"%PDF-") else None
    return Checked(documents.VerificationResult(valid=False, reasons=[REASON_UNCHECKED],
                                                sha256=sha),
                   stopped=stopped, child_pid=pid)


def check(pdf_bytes: bytes, seal_cert_pems: Iterable[bytes | str],
          tsa_cert_pems: Iterable[bytes | str] = (), limits: Limits = Limits(), *,
          slot: Slot | None = None) -> Checked:
    """Run ``documents.check_seal`` on ``pdf_bytes`` in a bounded child process.

    ``slot`` is a slot the caller claimed already (and releases itself); without one, a
    slot is claimed for the check and :class:`Busy` raised when all
    ``limits.max_concurrent`` slots of the machine are taken.
    Never raises on bad input: a file that runs out of CPU time, memory or wall-clock time,
    or crashes the child, is answered ``REASON_UNCHECKED`` with ``stopped`` saying which.
    """
    pdf_bytes = bytes(pdf_bytes)
    seal_pems = [p.encode("ascii") if isinstance(p, str) else bytes(p) for p in seal_cert_pems]
    tsa_pems = [p.encode("ascii") if isinstance(p, str) else bytes(p) for p in tsa_cert_pems]
    if not seal_pems:
        raise ValueError("a check needs at least one trusted seal certificate")
    if slot is None:
        slot = claim(limits)
        if slot is None:
            raise Busy()
    else:
        slot = contextlib.nullcontext()
    with slot:
        ctx = _context()
        ours, theirs = ctx.Pipe()
        child = ctx.Process(target=_child_main, name="returnprog-verify", daemon=True,
                            args=(theirs, limits.cpu_seconds,
                                  int(limits.memory_mb) * 1024 * 1024))
        deadline = time.monotonic() + float(limits.timeout_seconds)
        child.start()
        theirs.close()
        message = None
        killed = False
        try:
            ours.send_bytes(pdf_bytes)
            ours.send((seal_pems, tsa_pems))
            if ours.poll(max(0.0, deadline - time.monotonic())):
                message = _answer(ours.recv_bytes(MAX_ANSWER_BYTES))
        except (EOFError, OSError):
            message = None  # the child died (a limit) before answering, or said too much
        finally:
            ours.close()
            # A child that answered or hung up is exiting by itself: give it a moment, so
            # that its own exit status (SIGXCPU, MemoryError) is what we read.
            child.join(max(0.0, min(2.0, deadline - time.monotonic())))
            if child.is_alive():
                killed = True
                child.kill()
                child.join(2.0)
        pid, exitcode = child.pid, child.exitcode
        if exitcode is not None:
            child.close()
    if message is not None and message["status"] == "done":
        return Checked(_result(message), child_pid=pid, child_maxrss_kb=message["maxrss_kb"])
    if message is not None:
        stopped = message["stopped"]
    elif killed:
        stopped = STOPPED_TIMEOUT
    elif exitcode in (-signal.SIGXCPU, -signal.SIGKILL):
        stopped = STOPPED_CPU  # soft and hard RLIMIT_CPU (our own kill is ``killed``)
    elif exitcode == EXIT_OUT_OF_MEMORY:
        stopped = STOPPED_MEMORY
    else:
        stopped = STOPPED_CRASHED
    log.warning("a PDF check was stopped (%s, child exit %s, %d bytes)",
                stopped, exitcode, len(pdf_bytes))
    return _unchecked(pdf_bytes, stopped, pid)
