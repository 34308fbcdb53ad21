"""`make run`'s demo data (``flask seed-demo``) goes through the real services: every
planned case reaches its state, so a rule added to the workflow or the signing (the cash
receipt before departure, the separate acknowledgements, the typed name that must be the
signer's) cannot silently break the first thing a new colleague sees."""
from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import select

from returnprog import audit, documents, seed
from returnprog.models import Case, Document, User
from returnprog.policy import DEFAULT_POLICY


@pytest.mark.slow
def test_the_demo_seed_reaches_every_planned_state(session, tmp_path):
    seal = documents.ensure_dev_seal(tmp_path)
    lines = list(seed.seed(session, DEFAULT_POLICY, seal,
                           credentials_file=tmp_path / "demo-credentials.txt"))
    session.expire_all()
    states = Counter(session.execute(select(Case.state)).scalars())
    assert states == Counter(planned[0] for planned in seed.PLAN), lines[-3:]
    assert session.execute(select(User.email)).scalars().all()
    # Real sealed documents, and an audit chain that verifies end to end.
    assert session.execute(select(Document.id).limit(1)).first() is not None
    assert audit.verify(session).ok
    # The passwords are in the credentials file only, never in the printed lines.
    written = (tmp_path / "demo-credentials.txt").read_text()
    for line in written.splitlines():
        password = line.split()[-1]
        assert not any(password in printed for printed in lines)
