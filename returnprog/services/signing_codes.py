"""Signer verification on personal signing links: a one-time code sent to the
participant's registered e-mail address (through the outbox) or phone (text message),
entered before the document opens (issue 12, item 1). Flask-free.

Rules:

- Whether a link needs a code is policy data per document kind
  (:meth:`returnprog.policy.Policy.verification_for`); the office tablet never does.
- A code is 6 digits from ``secrets``, lives ``CODE_MINUTES`` (10) minutes, allows
  ``MAX_TRIES`` (5) wrong tries, then is locked; a new code can be asked for (the web layer
  limits sends per link). Only the latest code of a link counts, and it is single use.
- Only ``HMAC-SHA256(key, "<link id>:<code>")`` is stored, the key derived from the
  server secret: the table alone does not give the code, and a code is bound to its link.
- The e-mail waits in the outbox with the code *encrypted* (Fernet, a key derived from
  the server secret); the delivery opens it just before handing the message over
  (:func:`revealer`), so the database never holds a clear code.
- A verified code is the proof for ``VERIFIED_MINUTES``: the signing service accepts a
  signature on a link that needs a code only with a code of *that* link used within that
  time (the web layer keeps the code's id in a signed cookie; see ``web/signing_link.py``).
- Audit events: ``signing_code_sent`` (channel, masked address, link), ``signing_code_verified``
  (channel) and ``signing_code_failed`` (attempt number); never the code or the full address.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets

from sqlalchemy import select, update

from .. import audit, reminders as plan
from ..messages import M
from ..models import Case, Participant, SigningCode, SigningRequest
from . import Conflict, Context, Forbidden, Invalid
from .outbox import enqueue
from .uow import atomic, begin_write, commit

CODE_DIGITS = 6
CODE_MINUTES = 10
MAX_TRIES = 5
VERIFIED_MINUTES = 30
CHANNELS = ("email", "sms")
# How a document records the verification of its signer (Document.signer_verification).
METHODS = {"email": "email_code", "sms": "sms_code"}
TABLET_METHOD = "id_document"
# The channel of a tablet session opened through the API (a SigningRequest like a link).
TABLET_CHANNEL = "tablet"
NO_METHOD = "none"
MAIL_KIND = "signing_code"

_SEALED = re.compile(r"\[\[sealed:([A-Za-z0-9_=-]+)\]\]")


# --- keys, hashes, masks ----------------------------------------------------------------------

def _key(secret, purpose: bytes) -> bytes:
    if not secret:
        raise ValueError("signing codes need the server secret (SECRET_KEY)")
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    return hmac.new(raw, b"returnprog signing code/" + purpose, hashlib.sha256).digest()


def code_hash(secret, link_id: int, code: str) -> str:
    """The stored form of ``code`` for link ``link_id``: HMAC-SHA256 under a key derived
    from the server secret, so the same digits on another link hash differently."""
    return hmac.new(_key(secret, b"hash"), f"{link_id}:{code}".encode(),
                    hashlib.sha256).hexdigest()


def _fernet(secret):
    # Imported when a code is sealed or opened: app start-up loads no crypto library.
    from cryptography.fernet import Fernet

    return Fernet(base64.urlsafe_b64encode(_key(secret, b"seal")))


def seal(secret, code: str) -> str:
    """``code`` as a sealed marker for an outbox body (opened by :func:`revealer`)."""
    return "[[sealed:" + _fernet(secret).encrypt(code.encode()).decode() + "]]"


def revealer(secret):
    """The function the outbox delivery applies to each body just before sending: it
    replaces every sealed marker by its clear text (a marker that cannot be opened, e.g.
    after the secret changed, becomes a dash rather than a code)."""
    if not secret:
        return None

    def reveal(text: str) -> str:
        if "[[sealed:" not in text:
            return text
        from cryptography.fernet import InvalidToken

        fernet = _fernet(secret)

        def opened(match):
            try:
                return fernet.decrypt(match.group(1).encode()).decode()
            except InvalidToken:
                return "—"
        return _SEALED.sub(opened, text)
    return reveal


def mask_email(address: str) -> str:
    """``olena@example.org`` -> ``o***@example.org`` (what a page or the audit may show)."""
    local, _, domain = (address or "").strip().partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def mask_phone(number: str) -> str:
    """``+31 6 12345678`` -> ``+31 ****5678``: the country part and the last 4 digits."""
    digits = re.sub(r"[^\d+]", "", number or "")
    if len(digits) < 6:
        return "****"
    head = digits[:3] if digits.startswith("+") else digits[:2]
    return f"{head} ****{digits[-4:]}"


def contacts(person: Participant) -> list[tuple[str, str]]:
    """The channels a participant can get a code on, with the masked address: e-mail and
    text message, for the contacts registered on them."""
    out = []
    if (person.email or "").strip():
        out.append(("email", mask_email(person.email)))
    if len(re.sub(r"\D", "", person.phone or "")) >= 6:
        out.append(("sms", mask_phone(person.phone)))
    return out


def required(ctx: Context, link: SigningRequest) -> bool:
    """Whether the signer of ``link`` must enter a code before the document opens. Never
    for a tablet session (channel ``tablet``): the counsellor checked the identity
    document in person when opening it, as on the office tablet."""
    if link.channel == TABLET_CHANNEL:
        return False
    return ctx.policy.verification_for(link.kind) == "code"


def latest_code(ctx: Context, link: SigningRequest) -> SigningCode | None:
    """The newest code of ``link`` (the only one that counts), if any."""
    return ctx.session.execute(select(SigningCode).where(
        SigningCode.signing_request_id == link.id).order_by(SigningCode.id.desc())
        .limit(1)).scalar_one_or_none()


# --- errors -----------------------------------------------------------------------------------

class CodeRefused(Invalid):
    """A code that does not open the document. ``reason``: ``wrong`` (``tries_left`` more
    tries), ``locked`` (too many wrong tries), ``expired``, ``none`` (no code to check: ask
    for one) or ``format`` (not 6 digits; not counted as a try)."""

    def __init__(self, reason: str, tries_left: int = 0):
        super().__init__(f"signing.code_{reason}", {"code": [M(f"signing.code_{reason}")]})
        self.reason = reason
        self.tries_left = tries_left


class NoSuchChannel(Invalid):
    """The channel asked for is not one the participant has a contact for."""

    def __init__(self):
        super().__init__("signing.code_channel", {"channel": [M("signing.code_channel")]})


class VerificationRequired(Forbidden):
    """A signature on a link whose document needs a verified code, without one."""

    code = "verification_required"

    def __init__(self):
        super().__init__("signing.code_required")


# --- use cases --------------------------------------------------------------------------------

def _now(ctx: Context) -> dt.datetime:
    now = ctx.now()
    return now if now.tzinfo else now.replace(tzinfo=dt.timezone.utc)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _mail(ctx: Context, case: Case, person: Participant, link: SigningRequest, row: SigningCode,
          sealed: str) -> plan.Message:
    """The code e-mail: the participant's language first, then Dutch (English for a
    Dutch reader); no name, no case data beyond the document's name."""
    from .. import mailtext

    lang = person.language if person.language in mailtext.LANGUAGES else "uk"
    langs = ("nl", "en") if lang == "nl" else (lang, "nl")
    parts = {code_lang: mailtext.render("participant_code", code_lang, name="",
                                        role="participant", code=sealed,
                                        minutes=CODE_MINUTES, document_kind=link.kind)
             for code_lang in langs}
    subject, text, body_html = plan.render(parts)
    key = plan.idempotency_key(case.id, MAIL_KIND, f"link{link.id}~code{row.id}",
                               person.email)
    return plan.Message(key=key, case_id=case.id, kind=MAIL_KIND,
                        recipient=person.email.strip(), language=lang, subject=subject,
                        body_text=text, body_html=body_html, signing_request_id=link.id)


def code_text(lang: str, code: str, kind: str) -> str:
    """The text message with the code, in the participant's language (short: one SMS)."""
    from .. import glossary, mailtext

    t = mailtext.translations(lang)
    return t.gettext("%(code)s is your code to sign “%(document)s”. It is valid for 10 "
                     "minutes. Never share it.") % {
        "code": code, "document": glossary.document_name(kind, t.gettext)}


@atomic
def send_code(ctx: Context, link: SigningRequest, channel: str, *, secret,
              sms=None) -> tuple[SigningCode, str]:
    """Make a new code for ``link`` and send it on ``channel`` (``email``: into the outbox,
    sealed; ``sms``: through ``sms``, a :class:`returnprog.sms.SmsSender`). Earlier codes
    of the link stop counting. Returns the code's row and the masked address it went to.
    The clear code leaves this function only inside the message."""
    person = ctx.session.get(Participant, link.participant_id)
    available = dict(contacts(person))
    if channel not in CHANNELS or channel not in available:
        raise NoSuchChannel()
    if not required(ctx, link):
        raise Conflict("signing.code_not_needed")
    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    lang = person.language
    if channel == "sms":
        from ..sms import SmsError

        # Sent before the write lock is taken: a provider's round trip must not hold up
        # every other writer (SQLite). A send that fails records nothing.
        try:
            sms.send(person.phone.strip(), code_text(lang, code, link.kind))
        except SmsError:
            ctx.session.rollback()
            raise Conflict("signing.code_undeliverable")
    begin_write(ctx.session)
    now = _now(ctx)
    row = SigningCode(signing_request_id=link.id, channel=channel,
                      code_hash=code_hash(secret, link.id, code),
                      expires_at=now + dt.timedelta(minutes=CODE_MINUTES), attempts=0,
                      created_at=now)
    ctx.session.add(row)
    ctx.session.flush()
    if channel == "email":
        case = ctx.session.get(Case, link.case_id)
        enqueue(ctx.session, [_mail(ctx, case, person, link, row, seal(secret, code))], now=now)
    audit.append(ctx.session, actor=f"participant:{person.id}", action="signing_code_sent",
                 case_id=link.case_id,
                 details={"signing_request_id": link.id, "signing_code_id": row.id,
                          "user_agent": (ctx.user_agent or "")[:300] or None,
                          "channel": channel, "to": available[channel], "kind": link.kind,
                          "expires_at": row.expires_at.isoformat(timespec="seconds")},
                 ip=ctx.ip)
    commit(ctx)
    return row, available[channel]


@atomic
def check_code(ctx: Context, link: SigningRequest, code: str, *, secret) -> SigningCode:
    """Check a code entered on ``link``: the right one is spent and returned (the proof of
    verification); anything else raises :class:`CodeRefused` — a wrong code counts a
    try (and is recorded), the fifth wrong try locks the code."""
    entered = re.sub(r"[\s-]", "", code or "")
    if not re.fullmatch(rf"[0-9]{{{CODE_DIGITS}}}", entered):
        raise CodeRefused("format")
    begin_write(ctx.session)
    row = latest_code(ctx, link)
    if row is None or row.used_at is not None:
        raise CodeRefused("none")
    if row.attempts >= MAX_TRIES:
        raise CodeRefused("locked")
    if _aware(row.expires_at) <= _now(ctx):
        raise CodeRefused("expired")
    actor = f"participant:{link.participant_id}"
    # Compare-and-set updates: two requests racing on one code (PostgreSQL runs them side
    # by side) can neither both spend it nor squeeze in a sixth try.
    live = (SigningCode.id == row.id, SigningCode.used_at.is_(None),
            SigningCode.attempts < MAX_TRIES)
    if not hmac.compare_digest(code_hash(secret, link.id, entered), row.code_hash):
        attempts = ctx.session.execute(
            update(SigningCode).where(*live).values(attempts=SigningCode.attempts + 1)
            .returning(SigningCode.attempts).execution_options(synchronize_session=False)
        ).scalar_one_or_none()
        if attempts is None:
            raise CodeRefused("locked")
        audit.append(ctx.session, actor=actor, action="signing_code_failed",
                     case_id=link.case_id,
                     details={"signing_request_id": link.id, "signing_code_id": row.id,
                              "user_agent": (ctx.user_agent or "")[:300] or None,
                              "channel": row.channel, "attempt": attempts,
                              "locked": attempts >= MAX_TRIES}, ip=ctx.ip)
        commit(ctx)
        if attempts >= MAX_TRIES:
            raise CodeRefused("locked")
        raise CodeRefused("wrong", MAX_TRIES - attempts)
    spent = ctx.session.execute(update(SigningCode).where(*live).values(used_at=_now(ctx))
                                .execution_options(synchronize_session=False)).rowcount
    if spent != 1:
        raise CodeRefused("none")
    audit.append(ctx.session, actor=actor, action="signing_code_verified",
                 case_id=link.case_id,
                 details={"signing_request_id": link.id, "signing_code_id": row.id,
                          "user_agent": (ctx.user_agent or "")[:300] or None,
                          "channel": row.channel}, ip=ctx.ip)
    commit(ctx)
    ctx.session.refresh(row)
    return row


def verification(ctx: Context, link: SigningRequest, code_id: int | None) -> str | None:
    """How the signer of ``link`` is verified: ``email_code``/``sms_code`` when ``code_id``
    names a code of *this* link spent within ``VERIFIED_MINUTES``; ``none`` when the
    link's document needs no code; ``id_document`` for a tablet session (verified in
    person, as a signature on the office tablet); else None (not verified)."""
    if link.channel == TABLET_CHANNEL:
        return TABLET_METHOD
    if code_id is not None:
        row = ctx.session.get(SigningCode, code_id)
        if (row is not None and row.signing_request_id == link.id and row.used_at is not None
                and _aware(row.used_at) + dt.timedelta(minutes=VERIFIED_MINUTES) > _now(ctx)):
            return METHODS[row.channel]
    return None if required(ctx, link) else NO_METHOD
