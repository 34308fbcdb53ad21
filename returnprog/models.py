"""The tables (SQLModel). No Flask and no behaviour beyond derived properties.

SQLModel ``table=True`` classes do not validate input: marshmallow schemas do that before
anything reaches these classes (DESIGN §7).
"""
from __future__ import annotations

import datetime as dt
import secrets
from typing import Optional

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from . import payment_flow
from .policy import age_on


def utcnow() -> dt.datetime:
    """Aware UTC timestamp (SQLModel stores datetimes in UTC and refuses naive ones)."""
    return dt.datetime.now(dt.timezone.utc)


class Team(SQLModel, table=True):
    """A DTenV team; counsellors and supervisors see their own team's cases."""

    id: Optional[int] = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True)


class User(SQLModel, table=True):
    """A staff account: counsellor, supervisor, finance officer or admin.

    ``person`` is who holds the account: the personnel number of the staff member (upper
    case), shared by every account of the same person. Four eyes compares persons, not
    accounts. An account made without one (the operator's CLI, old rows) is a person of
    its own: a key starting with ``@`` (its e-mail address, or random), which no
    personnel number can equal."""

    id: Optional[int] = Field(default=None, primary_key=True)
    email: str = Field(max_length=254, unique=True, index=True)
    name: str = Field(max_length=200)
    role: str = Field(max_length=20)
    person: str = Field(default_factory=lambda: "@" + secrets.token_hex(8), max_length=255,
                        index=True)
    team_id: Optional[int] = Field(default=None, foreign_key="team.id")
    password_hash: str = Field(default="", max_length=300)
    active: bool = True
    failed_logins: int = 0
    locked_until: Optional[dt.datetime] = None
    # Bumped at sign-out and password change so that old session cookies stop working.
    session_epoch: int = 0
    created_at: dt.datetime = Field(default_factory=utcnow)


PENDING = "pending"


class AccountRequest(SQLModel, table=True):
    """A privileged account change one administrator asked for and a second one (another
    person) must approve before it takes effect: a new account with a privileged role
    (``create_user``), any role change (``change_role``), or a new password for someone
    else's privileged account (``reset_password``). Decided requests stay as the record."""

    __tablename__ = "account_request"
    __table_args__ = (
        # One open request per address: two admins cannot queue rival changes of one account.
        Index("uq_account_request_pending_email", "email", unique=True,
              sqlite_where=text("status = 'pending'"),
              postgresql_where=text("status = 'pending'")),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20)  # create_user | change_role | reset_password
    status: str = Field(default=PENDING, max_length=10)  # pending | approved | rejected
    # The account changed; for create_user the account made on approval.
    user_id: Optional[int] = Field(default=None, foreign_key="user.id")
    email: str = Field(max_length=254)
    name: str = Field(default="", max_length=200)
    team: str = Field(default="", max_length=120)
    person: str = Field(max_length=255)
    role: str = Field(max_length=20)
    old_role: Optional[str] = Field(default=None, max_length=20)
    # Only the hash of a requested password is kept, and only while the request is open.
    password_hash: str = Field(default="", max_length=300)
    requested_by: int = Field(foreign_key="user.id")
    requested_at: dt.datetime = Field(default_factory=utcnow)
    decided_by: Optional[int] = Field(default=None, foreign_key="user.id")
    decided_at: Optional[dt.datetime] = None
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))


class ApiToken(SQLModel, table=True):
    """A bearer token for the JSON API; only its SHA-256 is stored. It carries a label
    its owner chose, expires (``API_TOKEN_DAYS`` after issue) and can be revoked by its
    owner or an administrator; a token without an expiry is refused."""

    __tablename__ = "api_token"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    name: str = Field(default="", max_length=100)
    created_at: dt.datetime = Field(default_factory=utcnow)
    expires_at: Optional[dt.datetime] = None
    last_used_at: Optional[dt.datetime] = None
    revoked: bool = False
    revoked_at: Optional[dt.datetime] = None
    revoked_by: Optional[int] = Field(default=None, foreign_key="user.id")


class RateLimitCounter(SQLModel, table=True):
    """One counter of the shared rate limits and sign-in throttles (returnprog.limiter):
    its key, its count and when it expires (epoch seconds). Not business data: rows come
    and go, never audited."""

    __tablename__ = "rate_limit_counter"
    key: str = Field(primary_key=True, max_length=255)
    count: int = 0
    expires_at: float = Field(index=True)


class ReferenceCounter(SQLModel, table=True):
    """Last number handed out per year for case references ``VRP-<year>-<6 digits>``."""

    __tablename__ = "reference_counter"
    year: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    last: int = 0


class Case(SQLModel, table=True):
    """One household's participation in the programme (*dossier*)."""

    # Lists and counts see live cases only (``destroyed_at IS NULL``, issue 16) and sort by
    # reference: the indexes carry both, so a page or a count is read from the index alone
    # (an equality on IS NULL keeps the reference order usable). Measured at 150,000
    # cases: a team's intake count 4.5 ms -> 0.2 ms, its first page 6 ms -> 0.1 ms.
    __table_args__ = (
        Index("ix_case_state_id", "state", "id"),
        Index("ix_case_state_live", "state", "destroyed_at", "reference"),
        Index("ix_case_team_state", "team_id", "state", "destroyed_at", "reference"),
        Index("ix_case_team_live", "team_id", "destroyed_at", "reference"),
        # The deadline last: the dashboard's deadline lists are range scans of these
        # (migration 0026); the counts still come from the index alone.
        Index("ix_case_counsellor_live", "counsellor_id", "team_id", "state", "destroyed_at",
              "departure_deadline"),
        Index("ix_case_team_deadline", "team_id", "state", "destroyed_at", "departure_deadline"),
        Index("ix_case_deadline", "departure_deadline"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    reference: str = Field(max_length=20, unique=True)
    state: str = Field(max_length=20)
    # Compare-and-set token: every transition bumps it, so a racing request fails cleanly.
    version: int = 1
    team_id: int = Field(foreign_key="team.id")
    counsellor_id: int = Field(foreign_key="user.id", index=True)
    departure_deadline: Optional[dt.date] = None
    destination_oblast: Optional[str] = Field(default=None, max_length=5)
    destination_place: Optional[str] = Field(default=None, max_length=200)
    intake_notes: Optional[str] = Field(default=None, sa_column=Column(Text))
    departed_on: Optional[dt.date] = None
    departure_evidence: Optional[str] = Field(default=None, max_length=40)
    closing_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)
    updated_at: dt.datetime = Field(default_factory=utcnow)
    # Archive fields (issue 16, :mod:`returnprog.records`), set when the case closes:
    # keep | destroy, the day the term runs from (the final state's date), the day the
    # action is due, and to_archive | destroyed. A destroyed case is a tombstone: its
    # reference, final state, these dates and the destruction list remain.
    archive_nomination: Optional[str] = Field(default=None, max_length=10)
    archive_term_start: Optional[dt.date] = None
    archive_action_date: Optional[dt.date] = Field(default=None, index=True)
    archive_status: str = Field(default="to_archive", max_length=12,
                                sa_column_kwargs={"server_default": "to_archive"})
    destroyed_at: Optional[dt.datetime] = None
    destruction_list_id: Optional[int] = Field(default=None, foreign_key="destruction_list.id")


class Participant(SQLModel, table=True):
    """A person on a case: the principal or a household member."""

    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    is_principal: bool = False
    relationship: str = Field(default="principal", max_length=20)
    given_names_latin: str = Field(max_length=100)
    family_name_latin: str = Field(max_length=100)
    given_names_cyrillic: Optional[str] = Field(default=None, max_length=100)
    family_name_cyrillic: Optional[str] = Field(default=None, max_length=100)
    date_of_birth: dt.date
    v_number: str = Field(max_length=10, index=True)
    bsn: Optional[str] = Field(default=None, max_length=9)
    travel_document_number: Optional[str] = Field(default=None, max_length=30)
    email: Optional[str] = Field(default=None, max_length=254)
    phone: Optional[str] = Field(default=None, max_length=30)
    language: str = Field(default="uk", max_length=2)
    # Every displaced person lodged an asylum application when the RTB was granted; a
    # member without one (e.g. born here later) needs no IND confirmation.
    asylum_application_pending: bool = True
    # The day a correction added them to the case (issue 13); None for those on it since
    # the intake. A minor is covered only by withdrawal declarations signed since.
    joined_on: Optional[dt.date] = None

    @property
    def full_name(self) -> str:
        """Latin-script name as on the travel document."""
        return f"{self.given_names_latin} {self.family_name_latin}"

    def age_on(self, day: dt.date) -> int:
        """Completed years on ``day`` (adulthood itself is ``Policy.is_adult_on``)."""
        return age_on(self.date_of_birth, day)


class CaseSearch(SQLModel, table=True):
    """What the case search looks in: one row per case, its participants' names in every
    stored spelling, its reference, V-numbers and BSN keys, folded
    (:mod:`returnprog.search`). Kept in the same transaction as the participants; the
    index is a ``pg_trgm`` GIN index on PostgreSQL and an FTS5 trigram table on SQLite
    (made by the migration)."""

    __tablename__ = "case_search"
    __table_args__ = (
        Index("ix_case_search_haystack_trgm", "haystack", postgresql_using="gin",
              postgresql_ops={"haystack": "gin_trgm_ops"}).ddl_if(dialect="postgresql"),
    )
    case_id: int = Field(foreign_key="case.id", primary_key=True,
                         sa_column_kwargs={"autoincrement": False})
    haystack: str = Field(sa_column=Column(Text, nullable=False))


class OpenVNumber(SQLModel, table=True):
    """A V-number held by an open case: the primary key makes a second open case impossible,
    even when two counsellors register the same person at the same moment."""

    __tablename__ = "open_v_number"
    v_number: str = Field(primary_key=True, max_length=10)
    case_id: int = Field(foreign_key="case.id", index=True)


class Document(SQLModel, table=True):
    """A signed, sealed PDF: one signer, one kind, one version. Never changed once stored;
    a re-issue is a new version."""

    __table_args__ = (UniqueConstraint("case_id", "kind", "participant_id", "version"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    participant_id: Optional[int] = Field(default=None, foreign_key="participant.id")
    kind: str = Field(max_length=30)
    version: int = 1
    language: str = Field(default="nl", max_length=2)
    # The data the document was rendered from (JSON), e.g. the deadline it fixes.
    terms: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    signer_name: str = Field(default="", max_length=220)
    signature_method: str = Field(default="", max_length=10)  # drawn | typed
    signing_channel: str = Field(default="", max_length=10)  # tablet | link
    identity_document: Optional[str] = Field(default=None, max_length=60)
    # How the signer was verified: email_code | sms_code (a one-time code on a personal
    # link), id_document (the tablet: the counsellor checked it), none (the link alone).
    signer_verification: Optional[str] = Field(default=None, max_length=20)
    signed_at: Optional[dt.datetime] = None
    signed_ip: Optional[str] = Field(default=None, max_length=45)
    signed_user_agent: Optional[str] = Field(default=None, max_length=300)
    pdf: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = Field(default_factory=utcnow)
    created_by: Optional[int] = Field(default=None, foreign_key="user.id")
    # A correction of what the document states supersedes it (the signed PDF stays): from
    # ``superseded_at`` the guards want a new version signed, which ``superseded_by`` names
    # once it is.
    superseded_at: Optional[dt.datetime] = None
    superseded_by: Optional[int] = Field(default=None, foreign_key="document.id")


class SigningRequest(SQLModel, table=True):
    """A personal signing link or tablet session for one participant and one document.
    Only the SHA-256 of the random token is stored."""

    __tablename__ = "signing_request"
    __table_args__ = (
        # The reminder sweep looks only at links still open; keep that lookup small.
        Index("ix_signing_request_open", "expires_at",
              sqlite_where=text("used_at IS NULL AND revoked_at IS NULL"),
              postgresql_where=text("used_at IS NULL AND revoked_at IS NULL")),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    participant_id: int = Field(foreign_key="participant.id")
    kind: str = Field(max_length=30)
    terms: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    channel: str = Field(default="link", max_length=10)
    token_hash: str = Field(max_length=64, unique=True)
    expires_at: dt.datetime
    used_at: Optional[dt.datetime] = None
    revoked_at: Optional[dt.datetime] = None
    failed_attempts: int = 0
    created_by: int = Field(foreign_key="user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    document_id: Optional[int] = Field(default=None, foreign_key="document.id")
    # The participant declined to sign through the link (issue 12): when, a standard reason
    # code if one was chosen, and their own words. The link is closed then (revoked_at is
    # set as well); only a digest of the reason goes to the audit chain.
    declined_at: Optional[dt.datetime] = None
    decline_code: Optional[str] = Field(default=None, max_length=30)
    decline_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    # The first opening of the link page, for the evidence certificate (set once).
    opened_at: Optional[dt.datetime] = None
    opened_ip: Optional[str] = Field(default=None, max_length=45)
    opened_user_agent: Optional[str] = Field(default=None, max_length=300)
    # When the ``signing_link.expired`` webhook event was written for this link (issue 14):
    # the scheduler's sweep emits it once, for a link whose expiry passed unused.
    expiry_emitted_at: Optional[dt.datetime] = None


class SigningCode(SQLModel, table=True):
    """A one-time code sent to a personal link's signer (e-mail or text message). Only an
    HMAC of the code (keyed by the server secret, bound to the link) is kept; it expires,
    allows a few tries and is spent by the right one (``used_at``)."""

    __tablename__ = "signing_code"
    __table_args__ = (Index("ix_signing_code_request", "signing_request_id", "id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    signing_request_id: int = Field(foreign_key="signing_request.id")
    channel: str = Field(max_length=10)  # email | sms
    code_hash: str = Field(max_length=64)
    expires_at: dt.datetime
    attempts: int = 0
    used_at: Optional[dt.datetime] = None
    created_at: dt.datetime = Field(default_factory=utcnow)


class IndConfirmation(SQLModel, table=True):
    """The IND's confirmation that a participant's asylum application was withdrawn."""

    __tablename__ = "ind_confirmation"
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", unique=True)
    ind_reference: str = Field(max_length=40)
    confirmed_on: dt.date
    recorded_by: int = Field(foreign_key="user.id")
    recorded_at: dt.datetime = Field(default_factory=utcnow)
    # The IND's letter, when one was uploaded (one letter may confirm several people).
    evidence_file_id: Optional[int] = Field(default=None, foreign_key="evidence_file.id")


class CaseNote(SQLModel, table=True):
    """A free-text note on a case, by its author at its time. Never changed once stored:
    a correction is a new note that names the note it corrects (``corrects_id``)."""

    __tablename__ = "case_note"
    __table_args__ = (Index("ix_case_note_case", "case_id", "id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    author_id: int = Field(foreign_key="user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    body: str = Field(sa_column=Column(Text, nullable=False))
    corrects_id: Optional[int] = Field(default=None, foreign_key="case_note.id")


class EvidenceFile(SQLModel, table=True):
    """An uploaded piece of evidence (PDF, JPEG or PNG) on a case: an IND letter, a boarding
    pass, proof of a border crossing or of the BRP deregistration. Stored in the database
    like the signed documents, with its SHA-256; never changed once stored. ``filename`` is
    the uploader's name for it, sanitised, for display only. ``proves_departure`` marks
    the file(s) the recorded departure relies on (set by ``confirm_departure``)."""

    __tablename__ = "evidence_file"
    __table_args__ = (Index("ix_evidence_file_case", "case_id", "id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    kind: str = Field(max_length=30)
    content_type: str = Field(max_length=40)
    filename: str = Field(default="", max_length=120)
    size: int
    sha256: str = Field(max_length=64)
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    uploaded_by: int = Field(foreign_key="user.id")
    uploaded_at: dt.datetime = Field(default_factory=utcnow)
    proves_departure: bool = False


# From the payment's state table: the statuses of the one payment a case may have in flight.
LIVE_PAYMENT_STATUSES = payment_flow.LIVE_STATUSES


class Payment(SQLModel, table=True):
    """Travel support for one case: proposed, approved by another person, released once;
    a bank transfer then goes through a batch to the bank and is booked or returned
    (``payment_flow`` declares the statuses and steps)."""

    __table_args__ = (
        # At most one live payment per case — a database rule, not only code: never a
        # second transfer in flight, never two booked payments.
        Index("uq_payment_live_per_case", "case_id", unique=True,
              sqlite_where=text(payment_flow.live_predicate()),
              postgresql_where=text(payment_flow.live_predicate())),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    status: str = Field(max_length=12)  # payment_flow.STATUSES
    version: int = 1
    amount_cents: int
    currency: str = Field(default="EUR", max_length=3)
    adults: int
    minors: int
    tariff_effective_from: dt.date
    breakdown: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    method: str = Field(max_length=16)  # transfer | cash | card
    iban: Optional[str] = Field(default=None, max_length=34)
    account_holder: Optional[str] = Field(default=None, max_length=140)
    proposed_by: int = Field(foreign_key="user.id")
    proposed_at: dt.datetime = Field(default_factory=utcnow)
    approved_by: Optional[int] = Field(default=None, foreign_key="user.id")
    approved_at: Optional[dt.datetime] = None
    decision_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    disbursed_by: Optional[int] = Field(default=None, foreign_key="user.id")
    disbursed_at: Optional[dt.datetime] = None
    idempotency_key: Optional[str] = Field(default=None, max_length=100, unique=True)
    request_hash: Optional[str] = Field(default=None, max_length=64)
    export_batch_id: Optional[int] = Field(default=None, foreign_key="export_batch.id")
    reclaim_cents: Optional[int] = None
    reentry_on: Optional[dt.date] = None
    # The bank leg of a transfer: the id that travels with the money (set when the payment
    # joins a batch, kept when the batch is withdrawn), when the batch was sent, and what
    # the bank's statement said.
    end_to_end_id: Optional[str] = Field(default=None, max_length=35, index=True)
    sent_at: Optional[dt.datetime] = None
    booked_at: Optional[dt.datetime] = None
    returned_at: Optional[dt.datetime] = None
    return_reason: Optional[str] = Field(default=None, max_length=4)
    # Who recorded the bank's answer (imported the statement, or decided the entry).
    settled_by: Optional[int] = Field(default=None, foreign_key="user.id")
    # A corrected payment proposed after ``replaces_id`` came back from the bank.
    replaces_id: Optional[int] = Field(default=None, foreign_key="payment.id")
    # Cash and card: where the hand-over took place (who and when: disbursed_by/_at).
    handed_over_place: Optional[str] = Field(default=None, max_length=200)


class ExportBatch(SQLModel, table=True):
    """A payment batch: released bank transfers made once into every format — the SEPA
    pain.001 (``content``/``sha256``; none for accounts outside SEPA) and the CSV
    (``csv_content``/``csv_sha256``) — downloadable again at any time, byte for byte.
    ``status``: ``open`` (made, not sent), ``sent`` (handed to the bank), ``withdrawn``
    (never sent; its payments were freed). Rows from before batches (``kind`` ``sepa`` or
    ``csv``, one file each) are ``legacy``."""

    __tablename__ = "export_batch"
    id: Optional[int] = Field(default=None, primary_key=True)
    kind: str = Field(max_length=12)  # batch scope: sepa | outside_sepa (legacy: sepa | csv)
    status: str = Field(default="open", max_length=10)
    created_by: int = Field(foreign_key="user.id")
    created_at: dt.datetime = Field(default_factory=utcnow)
    payment_count: int = 0
    total_cents: int = 0
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    sha256: str = Field(max_length=64)
    csv_content: Optional[bytes] = Field(default=None, sa_column=Column(LargeBinary))
    csv_sha256: Optional[str] = Field(default=None, max_length=64)
    sent_by: Optional[int] = Field(default=None, foreign_key="user.id")
    sent_at: Optional[dt.datetime] = None
    withdrawn_by: Optional[int] = Field(default=None, foreign_key="user.id")
    withdrawn_at: Optional[dt.datetime] = None


class BankStatement(SQLModel, table=True):
    """An imported bank statement (camt.053 or MT940); the bank's statement id is unique,
    so importing the same statement twice changes nothing."""

    __tablename__ = "bank_statement"
    id: Optional[int] = Field(default=None, primary_key=True)
    statement_id: str = Field(max_length=70, unique=True)
    format: str = Field(max_length=20)
    account_iban: Optional[str] = Field(default=None, max_length=34)
    sha256: str = Field(max_length=64)
    entry_count: int = 0
    imported_by: int = Field(foreign_key="user.id")
    imported_at: dt.datetime = Field(default_factory=utcnow)


class StatementEntry(SQLModel, table=True):
    """One entry of an imported statement and what reconciliation did with it:
    ``outcome`` booked | returned (applied to ``payment_id``), review (unmatched or
    ambiguous: a person decides, ``review_reason`` says why) or ignored (not booked, or
    not about travel support)."""

    __tablename__ = "statement_entry"
    __table_args__ = (UniqueConstraint("statement_row_id", "reference",
                                       name="uq_statement_entry_reference"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    statement_row_id: int = Field(foreign_key="bank_statement.id", index=True)
    reference: str = Field(max_length=80)
    booked_on: dt.date
    direction: str = Field(max_length=6)
    status: str = Field(max_length=8)
    amount_cents: int
    currency: str = Field(max_length=3)
    end_to_end_id: Optional[str] = Field(default=None, max_length=35)
    counterparty_iban: Optional[str] = Field(default=None, max_length=34)
    counterparty_name: Optional[str] = Field(default=None, max_length=140)
    return_reason: Optional[str] = Field(default=None, max_length=4)
    outcome: str = Field(max_length=10)
    review_reason: Optional[str] = Field(default=None, max_length=30)
    payment_id: Optional[int] = Field(default=None, foreign_key="payment.id", index=True)
    resolved_by: Optional[int] = Field(default=None, foreign_key="user.id")
    resolved_at: Optional[dt.datetime] = None
    resolution: Optional[str] = Field(default=None, sa_column=Column(Text))


class CaseQueue(SQLModel, table=True):
    """The counsellor's work queues a case was in when last worked out (issue 11): a cache
    the dashboard counts from instead of judging every open case on every look.

    Never trusted blindly. Database triggers (migration 0024) add one to ``change_seq``
    whenever the case or any of its participants, documents, payments, signing links or IND
    confirmations is written, by any code path; a row counts only while ``computed_seq``
    equals it, between ``computed_at`` and ``recheck_at`` (the next link expiry or Amsterdam
    midnight, after which time alone may move the case; a clock set back never meets a
    judgement made in its future), and while ``policy_key`` is the policy in force.
    Anything else is judged afresh by the reader (:mod:`returnprog.services.queues`).

    ``counsellor_id``, ``team_id``, ``state`` and ``destroyed_at`` are the case's own, copied
    by triggers in the statement that changes the case (migration 0027): a counsellor's
    queue counts are then one range scan of ``ix_case_queue_reader`` instead of a lookup
    per open case. They are exact whatever the judgement's age; only the queues are cached."""

    __tablename__ = "case_queue"
    __table_args__ = (
        Index("ix_case_queue_reader", "counsellor_id", "team_id", "state", "destroyed_at",
              "policy_key", "computed_seq", "change_seq", "computed_at", "recheck_at", "mine",
              "participant", "ind"),
    )
    case_id: int = Field(primary_key=True, foreign_key="case.id",
                         sa_column_kwargs={"autoincrement": False})
    change_seq: int = 1
    computed_seq: int = 0
    mine: bool = False
    participant: bool = False
    ind: bool = False
    computed_at: Optional[dt.datetime] = None
    recheck_at: Optional[dt.datetime] = None
    policy_key: Optional[str] = Field(default=None, max_length=16)
    counsellor_id: Optional[int] = None
    team_id: Optional[int] = None
    state: Optional[str] = Field(default=None, max_length=20)
    destroyed_at: Optional[dt.datetime] = None


class OutboxMessage(SQLModel, table=True):
    """A reminder or alert waiting to be sent, or a webhook delivery. The idempotency key
    makes a duplicate impossible: (case, kind, deadline, recipient) for e-mail. What the key
    is about is also kept in columns, for queries: ``deadline`` (the case's departure
    deadline a deadline reminder or overdue alert is for; NULL for other messages),
    ``signing_request_id`` (the link a signing-link message is about) and ``recipient``.

    ``channel`` says which sender takes the row: ``email`` (SMTP) or ``webhook`` (an HTTP
    POST to ``webhook_subscription_id``'s URL; the key is then the ``webhook-id``, the
    subject the event type and ``body_text`` the JSON payload)."""

    __tablename__ = "outbox_message"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),
                      Index("ix_outbox_channel_due", "channel", "status", "next_attempt_at"),
                      Index("ix_outbox_subscription", "webhook_subscription_id", "id"))
    id: Optional[int] = Field(default=None, primary_key=True)
    channel: str = Field(default="email", max_length=10,
                         sa_column_kwargs={"server_default": "email"})
    webhook_subscription_id: Optional[int] = Field(default=None,
                                                   foreign_key="webhook_subscription.id")
    idempotency_key: str = Field(max_length=200, unique=True)
    case_id: Optional[int] = Field(default=None, foreign_key="case.id", index=True)
    kind: str = Field(max_length=30)
    recipient: str = Field(max_length=254)
    deadline: Optional[dt.date] = None
    signing_request_id: Optional[int] = Field(default=None, foreign_key="signing_request.id")
    # A signed document sent as an attachment: its bytes are read at delivery, not copied.
    document_id: Optional[int] = Field(default=None, foreign_key="document.id")
    language: str = Field(default="nl", max_length=2)
    subject: str = Field(max_length=300)
    body_text: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="pending", max_length=10)  # pending|sending|sent|failed|cancelled
    attempts: int = 0
    next_attempt_at: dt.datetime = Field(default_factory=utcnow)
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text))
    created_at: dt.datetime = Field(default_factory=utcnow)
    sent_at: Optional[dt.datetime] = None


class WebhookSubscription(SQLModel, table=True):
    """An API client's webhook: where to POST (``url``), which event types (``events``, a
    JSON list) and the signing secret, kept only encrypted (Fernet, key derived from the
    server's SECRET_KEY; :mod:`returnprog.services.webhooks`). The owner is the token's
    user: deliveries go only for cases that user may see. Deleting one sets ``deleted_at``
    (the delivery log stays) and cancels what was still to be sent."""

    __tablename__ = "webhook_subscription"
    id: Optional[int] = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True)
    url: str = Field(max_length=2000)
    events: str = Field(default="[]", sa_column=Column(Text, nullable=False))
    secret_encrypted: str = Field(sa_column=Column(Text, nullable=False))
    created_at: dt.datetime = Field(default_factory=utcnow)
    deleted_at: Optional[dt.datetime] = None


class WebhookAttempt(SQLModel, table=True):
    """One attempt to deliver a webhook (an outbox row of channel ``webhook``): when, how
    long it took, and the receiver's HTTP status or the error (short; never more than a
    couple of hundred characters of a response)."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_message", "message_id", "id"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="outbox_message.id")
    at: dt.datetime
    duration_ms: int = 0
    http_status: Optional[int] = None
    error: Optional[str] = Field(default=None, max_length=300)


class SchedulerHeartbeat(SQLModel, table=True):
    """What the active scheduler last reported, one row (``id`` 1) upserted by whichever
    scheduler holds the lock: who it is (``holder``, host and process id — no personal
    data), since when (``started_at``), its latest heartbeat (``beat_at``) and how its
    latest SMTP deliveries went (``last_sent_at``, ``last_error`` with addresses removed,
    ``last_error_at``). The web reads it across machines for ``/readyz`` and the
    dashboard's delivery warning."""

    __tablename__ = "scheduler_heartbeat"
    id: int = Field(default=1, primary_key=True)
    holder: str = Field(max_length=200)
    started_at: dt.datetime
    beat_at: dt.datetime
    last_sent_at: Optional[dt.datetime] = None
    last_error: Optional[str] = Field(default=None, max_length=500)
    last_error_at: Optional[dt.datetime] = None


class AuditHead(SQLModel, table=True):
    """The tip of the audit chain. Updating this single row serialises appends (a row
    lock in PostgreSQL) and lets verification notice a deleted last event."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)


class AuditEvent(SQLModel, table=True):
    """One entry of the append-only, hash-chained audit trail of changes. Every column
    but the surrogate ``id`` is inside ``hash``; see :mod:`returnprog.audit`."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_case", "case_id", "seq"),
                      # The processing log per staff member (issue 16).
                      Index("ix_audit_actor_id", "actor_id", "seq"))
    id: Optional[int] = Field(default=None, primary_key=True)
    # Which hash formula the event was written with (1: before ip/actor_id were hashed).
    chain_version: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    seq: int = Field(unique=True)
    at: dt.datetime
    actor_id: Optional[int] = Field(default=None, foreign_key="user.id")
    actor: str = Field(max_length=254)
    case_id: Optional[int] = Field(default=None, foreign_key="case.id")
    action: str = Field(max_length=40)
    from_state: Optional[str] = Field(default=None, max_length=20)
    to_state: Optional[str] = Field(default=None, max_length=20)
    details: str = Field(default="{}", sa_column=Column(Text, nullable=False))
    ip: Optional[str] = Field(default=None, max_length=45)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)
    # Version 3 (issue 16): the chain hashes ``personal_digest`` — SHA-256 of a random
    # per-event salt and the event's personal part (details, ip) — instead of that part
    # itself, so destroying a case can erase details, ip and salt and the chain still
    # verifies. ``erased_at``/``erased_by_list`` (not hashed) say which destruction did it.
    personal_digest: Optional[str] = Field(default=None, max_length=64)
    personal_salt: Optional[str] = Field(default=None, max_length=32)
    erased_at: Optional[dt.datetime] = None
    erased_by_list: Optional[int] = None


class AccessEvent(SQLModel, table=True):
    """Who looked at which personal data, when and how: the access log, apart from the
    audit chain of changes so that a read never queues on the chain's single head row.

    One row per reader, case, view and subject per interval (the unique key), written
    with insert-or-ignore: a page read twenty times in a minute is one row, and readers
    never wait on each other. ``first_at`` is when that look began."""

    __tablename__ = "access_log"
    __table_args__ = (
        UniqueConstraint("actor", "case_id", "view", "subject", "interval",
                         name="uq_access_log_look"),
        Index("ix_access_log_case", "case_id", "first_at"),
        # The processing log per staff member (issue 16).
        Index("ix_access_log_actor_id", "actor_id", "first_at"),
    )
    id: Optional[int] = Field(default=None, primary_key=True)
    first_at: dt.datetime
    interval: int  # first_at's interval number: seconds since the epoch // interval length
    actor_id: Optional[int] = Field(default=None, foreign_key="user.id")
    actor: str = Field(max_length=254)
    case_id: int = Field(foreign_key="case.id")
    view: str = Field(max_length=30)  # case | document | payment | trail | ...
    subject: str = Field(default="", max_length=60)  # e.g. the document id
    channel: str = Field(default="web", max_length=10)  # web | api | cli
    ip: Optional[str] = Field(default=None, max_length=45)
    # Why the data was read (BIO2 / AVG art. 30), recorded with the look from the reader's
    # role and the view (processing_log.look_purpose); NULL on rows from before 0022.
    purpose: Optional[str] = Field(default=None, max_length=30)


class MetricCounter(SQLModel, table=True):
    """A named count per day (e.g. anonymous verifications by verdict): operational
    figures that are not audit events. Incremented by an upsert in a transaction of its
    own, never through the audit chain's head row."""

    __tablename__ = "metric_counter"
    name: str = Field(primary_key=True, max_length=60)
    day: dt.date = Field(primary_key=True)
    count: int = 0


class LegalHold(SQLModel, table=True):
    """A legal hold on a case (issue 16): while one is in force (``lifted_at`` empty) the
    case is neither put on a destruction list nor destroyed, whatever its action date —
    e.g. an objection, an appeal or an investigation is running."""

    __tablename__ = "legal_hold"
    __table_args__ = (Index("ix_legal_hold_case", "case_id", "lifted_at"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    reason: str = Field(max_length=20)  # objection | appeal | investigation | other
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    placed_by: int = Field(foreign_key="user.id")
    placed_at: dt.datetime = Field(default_factory=utcnow)
    lifted_by: Optional[int] = Field(default=None, foreign_key="user.id")
    lifted_at: Optional[dt.datetime] = None
    lift_note: Optional[str] = Field(default=None, sa_column=Column(Text))


class DestructionList(SQLModel, table=True):
    """A list of cases whose action date has passed, proposed for destruction (issue 16).

    ``status``: proposed (the scheduler or a records manager made it) → reviewed (a records
    manager checked it, taking cases off with a reason) → approved (a process owner, another
    person, agreed) → destroyed (every item done). A process owner may send it back to
    proposed with a reason; a records manager may cancel it before approval."""

    __tablename__ = "destruction_list"
    id: Optional[int] = Field(default=None, primary_key=True)
    status: str = Field(default="proposed", max_length=10)
    version: int = 1
    created_at: dt.datetime = Field(default_factory=utcnow)
    created_by: Optional[int] = Field(default=None, foreign_key="user.id")
    reviewed_by: Optional[int] = Field(default=None, foreign_key="user.id")
    reviewed_at: Optional[dt.datetime] = None
    approved_by: Optional[int] = Field(default=None, foreign_key="user.id")
    approved_at: Optional[dt.datetime] = None
    returned_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    destroyed_at: Optional[dt.datetime] = None
    # Set when the list came from a replay after a restore (the original list's id).
    replay_of: Optional[int] = None


class DestructionItem(SQLModel, table=True):
    """One case on a destruction list: listed, removed (by a reviewer, with a reason),
    destroyed, or skipped at destruction (a hold or a changed rule since the review)."""

    __tablename__ = "destruction_item"
    __table_args__ = (UniqueConstraint("list_id", "case_id", name="uq_destruction_item"),
                      Index("ix_destruction_item_case", "case_id", "status"))
    id: Optional[int] = Field(default=None, primary_key=True)
    list_id: int = Field(foreign_key="destruction_list.id", index=True)
    case_id: int = Field(foreign_key="case.id")
    # Copied when listed, for the list's own record: the tombstone's facts.
    reference: str = Field(max_length=20)
    final_state: str = Field(max_length=20)
    action_date: dt.date
    status: str = Field(default="listed", max_length=10)
    removed_by: Optional[int] = Field(default=None, foreign_key="user.id")
    removed_at: Optional[dt.datetime] = None
    reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    destroyed_at: Optional[dt.datetime] = None


class AccessRequest(SQLModel, table=True):
    """A participant's request to see the personal data the service holds about them (AVG
    art. 15, issue 16): registered by a records manager who checked the requester's
    identity (the document's type and the last characters of its number, never the whole
    number), due one month after receipt, extendable once by up to two months with a
    reason, and delivered (the package's SHA-256 kept) or refused with a reason.

    ``status``: open | extended | delivered | refused; every change compares and sets
    ``version``."""

    __tablename__ = "access_request"
    __table_args__ = (Index("ix_access_request_status_due", "status", "due_on"),)
    id: Optional[int] = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    participant_id: int = Field(foreign_key="participant.id", index=True)
    status: str = Field(default="open", max_length=10)
    version: int = 1
    received_on: dt.date
    # How the request came in: letter | email | desk.
    received_via: str = Field(default="letter", max_length=10)
    due_on: dt.date
    original_due_on: dt.date
    identity_document_type: str = Field(max_length=20)
    identity_document_last4: str = Field(max_length=4)
    identity_checked_by: int = Field(foreign_key="user.id")
    identity_checked_at: dt.datetime
    registered_by: int = Field(foreign_key="user.id")
    registered_at: dt.datetime = Field(default_factory=utcnow)
    extension_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    extended_by: Optional[int] = Field(default=None, foreign_key="user.id")
    extended_at: Optional[dt.datetime] = None
    # The SHA-256 of the package last downloaded, and of the one delivered.
    package_sha256: Optional[str] = Field(default=None, max_length=64)
    delivered_sha256: Optional[str] = Field(default=None, max_length=64)
    delivery_channel: Optional[str] = Field(default=None, max_length=10)  # post|email|desk
    delivered_by: Optional[int] = Field(default=None, foreign_key="user.id")
    delivered_at: Optional[dt.datetime] = None
    refusal_reason: Optional[str] = Field(default=None, sa_column=Column(Text))
    refused_by: Optional[int] = Field(default=None, foreign_key="user.id")
    refused_at: Optional[dt.datetime] = None
