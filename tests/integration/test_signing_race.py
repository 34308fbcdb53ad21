"""Rendering and sealing happen outside the write lock; a change to the case that lands
meanwhile makes the signature refused (the document would no longer match), never stored."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select
from sqlmodel import Session

from returnprog import documents, workflow
from returnprog.models import Document, Participant
from returnprog.services import Conflict, Context, ServiceError
from returnprog.services import cases as case_service
from returnprog.services import signing

from ..conftest import intake


@pytest.fixture
def seal(tmp_path):
    return documents.ensure_dev_seal(tmp_path)


def test_a_case_changed_while_the_document_was_rendered_refuses_the_signature(
        engine, session, staff, ctx_for, policy, seal, monkeypatch):
    data = intake(1, 0)
    case = case_service.open_case(ctx_for(staff.counsellor), data)
    adult = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    real_seal = documents.seal_pdf

    def seal_while_someone_edits(pdf, seal_config, **kw):
        # Another counsellor corrects the destination while this document is being sealed.
        def edit():
            with Session(engine, expire_on_commit=False) as other:
                ctx = Context(session=other, policy=policy, actor=staff.counsellor)
                case_service.update_intake(ctx, case.reference, {**data, "destination_place": "Odesa"})
        t = threading.Thread(target=edit)
        t.start()
        t.join()
        return real_seal(pdf, seal_config, **kw)

    monkeypatch.setattr(documents, "seal_pdf", seal_while_someone_edits)
    ctx = ctx_for(staff.counsellor)
    ctx.seal = seal
    with pytest.raises(ServiceError) as refused:
        signing.sign_document(ctx, case.reference, adult, workflow.COMMITMENT, {},
                              method="typed", typed_name="Olena Kovalenko", channel="tablet",
                              identity_document="passport", consent=True)
    # The edit re-creates the household: where the database hands the participant the
    # same id again (SQLite) the stale content is caught; elsewhere the old id is gone.
    assert (isinstance(refused.value, Conflict) and refused.value.details[0]["code"] == "document_outdated"
            ) or refused.value.details == {"participant_id": ["Not a participant of this case."]}
    assert session.execute(select(func.count()).select_from(Document)).scalar_one() == 0

    # Signed again against the corrected case, it is stored.
    monkeypatch.setattr(documents, "seal_pdf", real_seal)
    adult = session.execute(select(Participant.id).where(Participant.case_id == case.id)).scalar_one()
    doc = signing.sign_document(ctx, case.reference, adult, workflow.COMMITMENT, {},
                                method="typed", typed_name="Olena Kovalenko", channel="tablet",
                                identity_document="passport", consent=True)
    assert doc.sha256 and session.execute(select(func.count()).select_from(Document)).scalar_one() == 1
