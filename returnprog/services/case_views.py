"""Read helpers for the case pages: the whole staff case page in one read, which steps are
open to the reader now and what is still missing for the others, who still has to sign
what, the deadline bounds, and the download of a signed document (logged, like every look
at personal data).

The case page costs a fixed number of statements however long the trail and however large
the household: the case once, one snapshot of its rows (:func:`lookups.case_snapshot`),
the newest trail page, then the access-log check and insert at the end. The budgets per
route are in tests/web/test_statement_budgets.py."""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from .. import payments, statements, workflow
from ..models import Document
from ..roles import INTAKE_ROLES
from ..workflow import ACTIONS, CASE_ACTIONS, State
from . import Context, Forbidden, NotFound, case_files, signing
from .role_views import may_download_documents
from . import cases
from . import payment as payment_service
from .outbox import failed_messages
from .access import record_look
from .lookups import CaseSnapshot, case_snapshot, gather_facts, load_case, load_case_named
from .uow import atomic


@atomic
def case_page(ctx: Context, reference: str, *, before_seq: int | None = None,
              trail: bool = True, trail_limit: int = cases.TRAIL_PAGE, looks: bool = False, signing_links: bool = False,
              log_view: bool = True) -> dict:
    """Everything the staff case page shows, read in one transaction with a fixed number
    of statements: ``case`` (as :func:`cases.read_case`), ``info`` (as :func:`outlook`),
    ``trail`` (``trail_limit`` events before ``before_seq``, else the newest; None when
    not asked),
    ``looks`` (the newest page of the access log, when asked) and ``signing_links`` (when
    asked) and ``case_files`` (the newest notes and evidence files,
    :func:`case_files.case_files_of`). The look is recorded at the end, after everything
    shown has been read."""
    case, *names = load_case_named(ctx, reference)
    snap = case_snapshot(ctx, case)
    facts = gather_facts(ctx, case, snap)
    page = {
        "case": cases.case_data(ctx, case, snapshot=snap, facts=facts,
                                names=tuple(names)),
        "info": _outlook(ctx, case, snap, facts),
        "trail": (cases.trail_page(ctx, case, before_seq=before_seq, limit=trail_limit)
                  if trail else None),
        "looks": cases.looks_page(ctx, case)["looks"] if looks else None,
        "signing_links": signing.links_of(ctx, case) if signing_links else None,
        # The newest notes and evidence files, one statement (none for finance).
        "case_files": case_files.case_files_of(ctx, case),
    }
    if log_view:
        record_look(ctx, case.id, "case")
    else:
        ctx.session.commit()  # read only: ends the snapshot
    return page


def outlook(ctx: Context, reference: str) -> dict:
    """The next steps on a case as the reader sees them.

    ``steps``: every workflow action the reader's role could take from the case's current
    state, each either ``allowed`` or with the ``refusals`` that say what is missing;
    main-line steps first in the programme's order, then the side exits (``destructive``);
    ``consequence`` says what a step that must be confirmed cannot undo.
    ``payment``: the live payment and which payment steps the reader may take.
    ``ind_pending``: participants still needing an IND confirmation (while committed).
    ``ind_waiting_for``: adults who have not yet signed the withdrawal declaration; until
    it is [], the IND has nothing to confirm and the page holds its forms back.
    ``signing``: per adult, the documents of this stage and whether each is signed.
    ``bounds``: earliest and latest departure deadline that may be agreed today.
    ``failed_messages``: reminders that could not be delivered after the last retry.
    """
    case = load_case(ctx, reference)
    snap = case_snapshot(ctx, case)
    return _outlook(ctx, case, snap, gather_facts(ctx, case, snap))


def _outlook(ctx: Context, case, snap: CaseSnapshot, facts) -> dict:
    role, policy = ctx.actor.role, ctx.policy
    steps = []
    for name in sorted(CASE_ACTIONS, key=workflow.step_order):
        action = ACTIONS[name]
        if workflow.role_refusals(action, role) or workflow.state_refusals(action, facts.state):
            continue
        refusals = action.precondition(facts, {}, policy)
        steps.append({"action": name, "allowed": not refusals,
                      "refusals": [r.as_dict() for r in refusals],
                      "destructive": action.destructive, "consequence": action.consequence})
    payment = snap.live_payment
    # After the bank returned a transfer the case shows the return (and its correction)
    # until a new payment is live.
    latest = snap.payments[-1] if snap.payments else None
    returned = latest if payment is None and latest is not None and \
        latest.status == "returned" else None
    adults = len(facts.adults)
    quote = payments.quote(policy, adults, len(facts.participants) - adults, ctx.today())
    pay_steps = {
        "propose": role in workflow.PAYMENT_PROPOSERS and payment is None and (
            facts.state == State.DEPARTURE_AGREED
            or (returned is not None and facts.state in (State.SUPPORT_PAID, State.DEPARTED))),
        "decide": role in workflow.PAYMENT_DECIDERS and payment is not None
        and payment.status == "proposed",
        # Also a proposal from another account of the same person: four eyes is by people.
        "own_proposal": payment is not None and (
            payment.proposed_by == ctx.actor.id
            or snap.persons.get(payment.proposed_by) == ctx.actor.person),
    }
    ind_pending = [{"id": p.id, "name": p.name} for p in facts.participants
                   if p.asylum_application_pending and not p.ind_confirmed] \
        if facts.state == State.COMMITTED and role in INTAKE_ROLES else []
    ind_waiting_for = [p.name for p in facts.adults
                       if workflow.WITHDRAWAL_DECLARATION not in p.signed] if ind_pending else []
    kinds = [k for k, states in workflow.SIGNING_STATES.items()
             if facts.state in states and k != workflow.PAYMENT_RECEIPT]
    if payment is not None and payment.method == "cash" and payment.status == "disbursed" \
            and facts.state in workflow.SIGNING_STATES.get(workflow.PAYMENT_RECEIPT, ()):
        kinds.append(workflow.PAYMENT_RECEIPT)  # cash handed over: the receipt is signed
    signing = [{"participant_id": p.id, "name": p.name,
                "documents": [{"kind": k, "signed": k in p.signed} for k in kinds]}
               for p in facts.adults] if kinds else []
    common_agreement = _common(p.agreement_deadlines for p in facts.adults)
    common_addendum = _common(p.addendum_deadlines for p in facts.adults)
    return {
        "steps": steps,
        "payment": ({"id": payment.id, "version": payment.version, "status": payment.status,
                     "amount_cents": payment.amount_cents, "method": payment.method,
                     "currency": payment.currency, "disbursed_at": payment.disbursed_at,
                     "sent_at": payment.sent_at, "booked_at": payment.booked_at}
                    if payment else None),
        "returned_payment": ({"id": returned.id, "returned_at": returned.returned_at,
                              "return_reason": returned.return_reason,
                              "return_reason_text": statements.return_reason_text(
                                  returned.return_reason),
                              "amount_cents": returned.amount_cents}
                             if returned else None),
        "payment_steps": pay_steps,
        "quote": ({"amount_cents": quote.amount_cents, **quote.breakdown()} if quote else None),
        "ind_pending": ind_pending,
        "ind_waiting_for": ind_waiting_for,
        "signing": signing,
        "unsigned": sum(1 for a in signing for d in a["documents"] if not d["signed"]),
        "bounds": {"earliest": policy.earliest_deadline(ctx.today()),
                   "latest": policy.latest_deadline(ctx.today()),
                   "reception_end": policy.reception_end},
        "signed_deadlines": {
            "agree_departure": max(common_agreement) if common_agreement else None,
            "extend_deadline": max(common_addendum) if common_addendum else None},
        "today": ctx.today(),
        "failed_messages": failed_messages(ctx.session, case_id=case.id),
    }


def _common(sets) -> set[dt.date]:
    sets = list(sets)
    if not sets:
        return set()
    out = set(sets[0])
    for s in sets[1:]:
        out &= set(s)
    return out


@atomic
def document_for_download(ctx: Context, reference: str, document_id: int) -> Document:
    """A signed document of a case the reader may see; the download is recorded in the
    access log (it is a look at personal data)."""
    case = load_case(ctx, reference)
    if not may_download_documents(ctx.actor.role):
        raise Forbidden("case.documents_role")
    doc = ctx.session.execute(select(Document).where(
        Document.id == document_id, Document.case_id == case.id)).scalar_one_or_none()
    if doc is None:
        raise NotFound("case.no_document", id=document_id, ref=reference)
    record_look(ctx, case.id, "document", subject=str(doc.id))
    return doc


@atomic
def document_register(ctx: Context, reference: str) -> list[dict]:
    """The signed documents of a case the reader may see, oldest first, without their
    PDFs: kind, version, signer, signing time, SHA-256 and ``status`` (``current``, or
    ``superseded`` once a correction replaced what it states). The same entries the case
    read shows, recorded in the access log as a look at the case."""
    case = load_case(ctx, reference)
    rows = ctx.session.execute(
        select(Document.id, Document.kind, Document.version, Document.participant_id,
               Document.signer_name, Document.signature_method, Document.signing_channel,
               Document.signed_at, Document.sha256, Document.superseded_at,
               Document.superseded_by)
        .where(Document.case_id == case.id).order_by(Document.id)).all()
    items = [{**row._asdict(),
              "status": "superseded" if row.superseded_at is not None else "current"}
             for row in rows]
    record_look(ctx, case.id, "case")
    return items


def document_filename(reference: str, doc: Document) -> str:
    """The download name of a case's signed document (reference, kind, participant id,
    version: no personal identifiers)."""
    return f"{reference}-{doc.kind}-p{doc.participant_id or 0}-v{doc.version}.pdf"


@atomic
def payment_page(ctx: Context, reference: str) -> dict:
    """What the staff payment page of a case shows, in one read with a fixed number of
    statements: ``payment`` (the live one, else the latest, as
    :func:`payment.read_payment` gives it) and ``case`` (as :func:`cases.read_case`).
    Looking at the bank details is recorded in the access log, at the end."""
    case, *names = load_case_named(ctx, reference)
    snap = case_snapshot(ctx, case)
    current = snap.live_payment or (snap.payments[-1] if snap.payments else None)
    if current is None:
        raise NotFound("payment.case_has_none", ref=reference)
    receipt = (any(d.kind == workflow.PAYMENT_RECEIPT and d.superseded_at is None
                   for d in snap.documents)
               if current.method == "cash" else None)
    data = payment_service.payment_data(current, case.reference, receipt_signed=receipt,
                                        users=snap.users)
    # The reader's own part in it, as a person (for the pages: no dead decide button).
    data["own_proposal"] = current.proposed_by == ctx.actor.id or \
        snap.persons.get(current.proposed_by) == ctx.actor.person
    page = {"payment": data,
            "case": cases.case_data(ctx, case, snapshot=snap, names=tuple(names))}
    record_look(ctx, case.id, "payment", subject=str(current.id))
    return page
