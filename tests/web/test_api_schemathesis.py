"""Schemathesis against the served OpenAPI document, on SQLite and PostgreSQL (issue 14).

The document is read from the running app (``/api/v1/openapi.json``) and every operation
is exercised over a real socket as a counsellor, a supervisor and a finance officer, with
all checks on and the path parameter ``reference`` pinned to a real case of the caller's
team (else nearly every request would only meet a 404). Phases: examples, coverage (the
documented boundaries and each kind of invalid input) and fuzzing, a bounded number of
examples each. Any failed check — a server error, an undocumented status, a response that
does not match its schema, a valid request refused or an invalid one accepted — fails the
test with the reproduction Schemathesis gives.

The few failures dropped (``_expected_failure``) are the rules a JSON Schema cannot state:
each is listed there with its reason.
"""
from __future__ import annotations

import collections
import re
import threading
import time

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import events, from_schema
from sqlmodel import Session
from werkzeug.serving import WSGIRequestHandler, make_server

from returnprog.policy import DEFAULT_POLICY
from returnprog.services import Context
from returnprog.services import payment as payment_service

from ..conftest import drive_to

# Per phase and operation; keeps one role's run to well under a minute on a busy box.
MAX_EXAMPLES = 5
ROLES = ("counsellor", "supervisor", "finance")

# Refusals of schema-valid input by rules JSON Schema cannot state, as the codes the 422
# names: a check digit (the BSN's eleven-test; the IBAN's mod-97 and its length per
# country), a relation between fields or to other data (a reversed deadline range, one
# V-number twice in a household, dates of birth that make a relationship implausible,
# bank details that do not fit the payment method, a reclaim above what was paid, a
# re-entry before the departure), a date relative to today (a re-entry in the future),
# the search index's idea of a findable word, and marshmallow's e-mail check, stricter
# than JSON Schema's `email` format (it wants a top-level domain).
UNSTATABLE = re.compile(
    r"^(validate\.(bsn|deadline_range|v_number_twice|search_short)"
    r"|partner_not_adult|child_not_younger|parent_not_older"
    r"|payment\.(iban_(required|checksum|length|country|layout)|holder_required"
    r"|no_iban_for|no_holder_for|reclaim_too_much|reentry_future|reentry_before_departure)"
    r"|field\.invalid_email"
    # The deprecated e-mail form of the counsellor filter, checked as an e-mail field.
    r"|validate\.user_id"
    # Whether a webhook's host resolves, and to a public address, is the DNS's answer.
    r"|webhook\.url_(unresolvable|private)"
    # Whether an uploaded file is a bank statement is its content, not its type.
    r"|statement\.(too_large|forbidden|malformed|invalid|unsupported|empty))$")


def _expected_failure(failure, case, response) -> str | None:
    """Why a failure is not a fault of the document or the service, else None."""
    name = type(failure).__name__
    text = str(failure)
    if name == "AcceptedNegativeData" and "parameter `reference` in path" in text:
        # The test pins `reference` to the seeded case, so a case meant to be invalid in
        # `reference` is sent with the real one and rightly accepted.
        return "pinned reference"
    if name == "AcceptedNegativeData" and "String larger than maxLength" in text and any(
            value != value.strip() for value in _strings(case.query, case.body)):
        # Surrounding white space is trimmed before a length is checked (schemas.Strict).
        return "trimmed to length"
    if name == "RejectedPositiveData" and response.status_code == 422:
        try:
            details = response.json()["error"]["details"]
        except (ValueError, KeyError, TypeError):
            return None
        if details and all(UNSTATABLE.match(d.get("code", "")) for d in details):
            return "422 " + ",".join(sorted({d["code"] for d in details}))
    return None


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs) -> None:  # thousands of lines otherwise
        pass


def _strings(*values):
    """Every string in the values (query and body), however deeply nested."""
    for value in values:
        if isinstance(value, str):
            yield value
        elif isinstance(value, dict):
            yield from _strings(*value.values())
        elif isinstance(value, (list, tuple)):
            yield from _strings(*value)


@pytest.fixture
def served(app):
    """The app on a real socket (a free port), in a thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture
def seeded(app, api_staff):
    """A case per role to point the operations at: an intake case of the counsellor; a
    case whose departure is agreed with a bank transfer proposed, for the supervisor
    (approve, reject) and finance (export, pay)."""
    engine = app.extensions["returnprog.engine"]
    with Session(engine, expire_on_commit=False) as session:
        def ctx_for(user):
            return Context(session=session, policy=DEFAULT_POLICY, actor=user,
                           ip="127.0.0.1", user_agent="pytest", channel="api")
        fresh = drive_to(ctx_for, api_staff, session, "intake")
        agreed = drive_to(ctx_for, api_staff, session, "departure_agreed")
        payment_service.propose(ctx_for(api_staff.counsellor), agreed.reference, {
            "method": "transfer", "iban": "NL91ABNA0417164300", "account_holder": "O. Kovalenko"})
        return {"counsellor": fresh.reference, "supervisor": agreed.reference,
                "finance": agreed.reference}


def run(base_url: str, headers: dict, reference: str) -> dict:
    """One Schemathesis run (examples, coverage, fuzzing; all checks) against the served
    document; returns the figures and the failures."""
    config = SchemathesisConfig.from_dict({
        "base-url": base_url, "headers": headers, "seed": 14,
        # No example database: each run stands on its own (and the seed makes it repeatable).
        "generation": {"max-examples": MAX_EXAMPLES, "database": "none"},
        "parameters": {"path.reference": reference},
        # Stateful runs chain operations by the links Schemathesis infers; left out to keep
        # the run bounded (issue 14's household run through a generated client chains them).
        "phases": {"stateful": {"enabled": False}},
    })
    schema = schemathesis.openapi.from_url(f"{base_url}/api/v1/openapi.json", config=config)
    dropped: collections.Counter = collections.Counter()

    def keep(ctx, failure, case, response) -> bool:
        reason = _expected_failure(failure, case, response)
        dropped[reason] += reason is not None
        return reason is None

    schema.hook("filter_failure")(keep)
    figures = {"operations": len(schema), "cases": 0, "checks": 0, "dropped": dropped,
               "failures": [], "errors": []}
    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished):
            figures["cases"] += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                figures["checks"] += len(checks)
                for check in checks:
                    if check.failure_info is None:
                        continue
                    figures["failures"].append(
                        f"{event.label}: {check.name}: {check.failure_info.failure}\n"
                        f"    {check.failure_info.code_sample}")
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            figures["errors"].append(f"{getattr(event, 'label', '')}: {event.value!r}")
    return figures


# Both engines: a query or a constraint that only PostgreSQL refuses is a 500 there.
@pytest.mark.engines_differ
def test_schemathesis_finds_nothing_for_any_role(served, seeded, api_staff, db_url):
    started = time.monotonic()
    report = []
    for role in ROLES:
        begun = time.monotonic()
        figures = run(served, api_staff.headers[role], seeded[role])
        report.append(f"{role}: {figures['operations']} operations, {figures['cases']} "
                      f"requests, {figures['checks']} checks, {time.monotonic() - begun:.0f} s, "
                      f"dropped as expected: {dict(+figures['dropped'])}")
        assert not figures["errors"], "\n".join(figures["errors"][:5])
        assert not figures["failures"], "\n".join(sorted(set(figures["failures"]))[:10])
        assert figures["cases"] > figures["operations"] * 3
    print(f"\n{db_url.split(':')[0].split('+')[0]}: " + "; ".join(report)
          + f"; {time.monotonic() - started:.0f} s")
