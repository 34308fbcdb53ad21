"""Every sentence the core says to people, by a stable code (issue 9).

The workflow's refusals, the services' errors and the validation messages are raised as a
code with parameters; the English text is a template in :data:`MESSAGES` (the gettext
msgid) and is rendered in the reader's language only where it is shown: the API renders
English, the staff UI Dutch or English, the signing pages the participant's language.

Flask-free: callers inject ``gettext``/``ngettext`` of the reader's language and the
formatters for dates, money, states, actions, roles and name lists.

Codes: workflow refusals keep their API codes (``deadline_too_soon``); a variant of the
same refusal with other words adds ``:variant`` (``deadline_not_passed:reception``), and
the API code is the part before the colon. Service errors are ``area.what``
(``case.not_found``, ``payment.stale``, ``signing.link_expired``); marshmallow's own
messages are ``field.*`` and ``validate.*``.

Parameters are formatted by name: ``date``/``deadline``/``current`` are dates, ``cents``
and ``tariff`` whole cents, ``state`` a case state, ``states`` a list of states,
``action`` an action name, ``roles`` a list of roles, ``names`` a list of people's names;
anything else is shown as text.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple

from .glossary import N_
from .money import METHOD_LABELS, format_cents


class Plural(NamedTuple):
    """An ngettext entry: the count parameter ``count`` chooses the form."""

    singular: str
    plural: str
    count: str = "num"


def NP_(singular: str, plural: str, count: str = "num") -> Plural:
    """Mark a plural message for extraction (``-k NP_:1,2``)."""
    return Plural(singular, plural, count)


MESSAGES: dict[str, str | Plural] = {
    # --- workflow refusals (codes are the API's) ---
    "intake_no_participants": N_("The case has no participants."),
    "intake_no_adult": N_("The household has no adult who can sign."),
    "intake_destination": N_("The destination oblast is not recorded."),
    "intake_place": N_("The destination town or village is not recorded."),
    "intake_contact": N_("No e-mail address or phone number for: %(names)s."),
    "commitment_unsigned": N_("The commitment (deelnameverklaring) is not signed yet by: %(names)s."),
    "withdrawal_declaration_unsigned": N_(
        "The asylum withdrawal declaration is not signed yet by: %(names)s."),
    "ind_confirmation_missing": N_(
        "No IND confirmation (reference and date) recorded for: %(names)s."),
    "deadline_missing": N_("A departure deadline is required."),
    "deadline_past": N_("The departure deadline must be after today."),
    "deadline_too_soon": N_(
        "The departure deadline must be at least %(days)s days ahead (on or after %(date)s): "
        "DTenV needs that time to arrange travel."),
    "deadline_too_far": N_(
        "The departure deadline may be at most %(days)s days ahead (on or before %(date)s)."),
    "deadline_after_reception_end": N_(
        "The departure deadline may not be after the end of reception (%(date)s)."),
    "departure_agreement_unsigned": N_("The departure agreement is not signed yet by: %(names)s."),
    "departure_agreement_unsigned:for_deadline": N_(
        "No departure agreement for %(date)s signed by: %(names)s."),
    "reason_missing": N_("A reason is required."),
    "deadline_not_later": N_("The new deadline must be later than the current one (%(date)s)."),
    "addendum_unsigned": N_("No addendum for %(date)s signed by: %(names)s."),
    "payment_not_approved": N_("No travel-support payment has been proposed and approved yet."),
    "payment_not_approved:yet": N_("The travel-support payment has not been approved yet."),
    "payment_already_disbursed": N_("The travel support was already paid."),
    "payment_four_eyes": N_("The payment must be approved by someone other than its proposer."),
    "payment_four_eyes:person": N_(
        "The payment was proposed and approved by the same person under two accounts; "
        "another person must approve it."),
    "tariff_missing": N_("No travel-support tariff is in force."),
    "payment_amount_mismatch": N_(
        "The payment amount (%(cents)s) differs from the household's tariff (%(tariff)s)."),
    "departure_date_missing": N_("The departure date is required."),
    "departure_date_future": N_("The departure date cannot be in the future."),
    "departure_evidence_missing": N_(
        "Evidence of departure is required: border crossing, boarding or BRP deregistration."),
    "ind_before_declaration": N_(
        "An IND confirmation is dated before the withdrawal declaration was signed, for: "
        "%(names)s."),
    "ind_before_declaration:date": N_(
        "The IND confirmation date (%(date)s) is before the withdrawal declaration was "
        "signed (%(signed_on)s)."),
    "ind_date_future": N_("The IND cannot have confirmed in the future."),
    "departure_before_agreement": N_(
        "The departure date cannot be before the departure agreement was signed (%(date)s)."),
    "payment_receipt_unsigned": N_(
        "The travel support was paid in cash: the payment receipt must be signed before the "
        "departure is confirmed."),
    "partner_not_adult": N_("A spouse or partner must be an adult (%(age)s or older)."),
    "child_not_younger": N_(
        "A child or grandchild must be younger than the principal (born %(date)s)."),
    "parent_not_older": N_(
        "A parent or grandparent must be older than the principal (born %(date)s)."),
    "deadline_not_passed": N_("The departure deadline (%(date)s) has not passed yet."),
    "deadline_not_passed:reception": N_("The end of reception (%(date)s) has not passed yet."),
    "case_closed": N_("The case is closed (%(state)s); nothing more can happen."),
    "withdrawal_irreversible": N_(
        "The asylum application has been withdrawn: the participant can no longer leave the "
        "programme this way."),
    "confirmation_missing": N_(
        "Confirm that you have read what this step means: it cannot be undone."),
    "wrong_state": N_("'%(action)s' is only possible when the case is %(states)s; it is %(state)s."),
    "wrong_state:now": N_("The case is %(state)s."),
    "role": N_("Only a %(roles)s may perform '%(action)s'."),
    # --- the API's request errors ---
    "api.send_json": N_("Send JSON (Content-Type: application/json)."),
    "api.malformed_json": N_("The request body is not valid JSON."),
    "api.not_object": N_("The request body must be a JSON object."),
    "api.expected_object": N_("Expected a JSON object."),
    "api.parameter_repeated": N_("Give this parameter once."),
    # --- services: cases ---
    "error.invalid_fields": N_("Some fields are not valid."),
    "case.not_found": N_("No case %(ref)s that you may see."),
    "case.busy": N_("The case is being changed by someone else right now; reload it and try again."),
    "case.changed_first": N_("Someone else changed the case first."),
    "case.confirmation_missing": N_("'%(action)s' cannot be undone and was not confirmed."),
    "case.person_has_open_case": N_("A person on this case already has an open case."),
    "case.v_number_taken": N_("This V-number already belongs to an open case."),
    "case.no_team": N_("You are not in a team, so you cannot hold cases."),
    "case.intake_role": N_("Only a counsellor may edit the intake."),
    "case.intake_locked": N_("The intake can only be changed while the case is in intake."),
    "case.intake_signed": N_(
        "Documents have already been signed for this household; the intake can no longer be "
        "edited."),
    "case.signed_documents_exist": N_("Signed documents exist."),
    "correction.role": N_("Only a counsellor may correct a case."),
    "correction.case_closed": N_("A closed case can no longer be corrected."),
    "correction.nothing_changed": N_("Nothing was changed: every value is as it was."),
    "correction.destination_agreed": N_(
        "The destination is fixed by the signed departure agreement and can no longer be "
        "corrected."),
    "correction.destination_agreed_detail": N_(
        "The departure agreement cannot be signed again once the departure is agreed."),
    "correction.adulthood_changes": N_(
        "This date of birth would make a minor an adult or an adult a minor. That changes who "
        "signs and the travel support: a correction cannot do that once documents are signed."),
    "correction.adulthood_changes_detail": N_("The correction changes who is an adult."),
    "correction.contact_missing": N_("Every adult needs an e-mail address or a phone number."),
    "correction.contact_missing_detail": N_(
        "An adult would be left without an e-mail address and without a phone number."),
    "correction.adult_joins_late": N_(
        "An adult can join the household only while the case is in intake: every adult signs "
        "the commitment, and that step has been taken. Open a separate case for them."),
    "correction.adult_joins_late_detail": N_(
        "The commitment can no longer be signed, so a new adult could never commit."),
    "correction.minor_joins_late": N_(
        "A child with a pending asylum application can join only until the withdrawal is "
        "recorded: the adults' withdrawal declarations withdraw it and can no longer be signed "
        "again."),
    "correction.minor_joins_late_detail": N_(
        "The withdrawal declarations can no longer be signed again."),
    "correction.household_paid": N_(
        "The household cannot change while a payment is proposed, approved or paid: the travel "
        "support is worked out from the household. Cancel or reject the payment first if it "
        "has not been paid out."),
    "correction.household_paid_detail": N_("A payment exists for this household."),
    "correction.member_signed": N_(
        "This person has signed documents on this case and cannot be removed by a correction: "
        "their signatures are part of the case's record. Record on the case why they no "
        "longer take part (a note), or end the case and open a new one for the others."),
    "correction.member_signed_detail": N_("This person has signed documents on this case."),
    "correction.member_confirmed": N_(
        "The IND has confirmed this person's withdrawal on this case: they cannot be removed "
        "by a correction."),
    "correction.member_confirmed_detail": N_("An IND confirmation is recorded for this person."),
    "correction.principal_stays": N_(
        "The principal cannot be removed from the case: the case is theirs."),
    "correction.principal_stays_detail": N_("The principal stays on the case."),
    "correction.household_too_large": N_("The household would have too many members."),
    "case.ind_role": N_("Only a counsellor may record an IND confirmation."),
    "case.ind_state": N_("IND confirmations are recorded while the case is committed."),
    "case.unknown_participant": N_("Unknown participant."),
    "case.not_a_participant": N_("Not a participant of this case."),
    "case.no_pending_application": N_("No pending application."),
    "case.no_pending_application_detail": N_(
        "This participant has no pending asylum application to withdraw."),
    "case.ind_already_recorded": N_("An IND confirmation is already recorded for this participant."),
    "case.recorded": N_("Recorded: %(ref)s."),
    "case.no_such_action": N_("No action called '%(name)s'."),
    "case.action_not_possible": N_("'%(action)s' is not possible yet."),
    "case.no_document": N_("No document %(id)s on case %(ref)s."),
    # --- services: case notes and evidence files ---
    "note.role": N_("Only counsellors and supervisors keep notes on a case."),
    "note.unknown_note": N_("There is no note %(id)s on this case to correct."),
    "note.too_long": N_("A note may be at most %(max)s characters long; split it into several notes."),
    "evidence.role": N_("Only counsellors and supervisors handle the evidence files of a case."),
    "evidence.not_found": N_("No evidence file %(id)s on case %(ref)s."),
    "evidence.choose_file": N_("Choose the file to upload."),
    "api.send_pdf": N_("Send the PDF as multipart/form-data in the field 'file'."),
    "verify.busy": N_("Every verification slot is in use right now; try again in a minute."),
    "verify.rate": N_("Too many verifications from this address; wait a moment."),
    "api.send_multipart": N_("Send the file as multipart/form-data with the fields 'kind' and 'file'."),
    "evidence.empty": N_("The file is empty."),
    "evidence.too_large": N_("The file is too large: at most %(max)s MB."),
    "evidence.wrong_type": N_("Only PDF, JPEG and PNG files can be uploaded; this file is none of them."),
    "evidence.type_mismatch": N_(
        "The file's name or type says something else than its content, which is %(kinds)s; "
        "save it under its right type and upload it again."),
    "evidence.unreadable": N_("The file looks like %(kinds)s but cannot be opened as one; it may be damaged or protected by a password."),
    "evidence.unknown_kind": N_("Choose what the file is evidence of."),
    "evidence.not_on_case": N_("Evidence file %(id)s is not a file of this case."),
    "evidence.wrong_kind": N_("This evidence file is of another kind than this form needs."),
    "case.documents_role": N_(
        "Finance officers do not download the signed documents: they show the people's "
        "identity numbers."),
    # --- services: accounts ---
    "account.sign_in_wrong": N_("The e-mail address or password is not right."),
    "account.sign_in_wait": NP_(
        "Too many failed attempts. Wait %(seconds)s second before you try again.",
        "Too many failed attempts. Wait %(seconds)s seconds before you try again.",
        "seconds"),
    "account.no_such_user": N_("No such user."),
    "token.not_found": N_("No such API token."),
    "webhook.not_found": N_("No webhook subscription %(id)s."),
    "webhook.not_yours": N_("Send a bearer token to manage your webhook subscriptions."),
    "webhook.no_delivery": N_("No delivery %(id)s of this webhook subscription."),
    "webhook.delivery_queued": N_("This delivery is still queued; it is sent without asking."),
    "webhook.events_required": N_("Give a list of one or more event types."),
    "webhook.unknown_event": N_("Unknown event type; the event types are: %(types)s."),
    "webhook.url_invalid": N_("Give an absolute https URL of at most 2000 characters."),
    "webhook.url_https": N_("The URL must use https."),
    "webhook.url_credentials": N_("The URL may not contain a user name or password."),
    "webhook.url_unresolvable": N_("The URL's host name cannot be resolved."),
    "webhook.url_private": N_(
        "The URL's host is a private, loopback or link-local address: webhooks go only to "
        "public addresses."),
    "token.not_yours": N_("Sign in to manage your API tokens."),
    "token.name_required": N_("Give the token a name that says what it is for."),
    "token.name_too_long": N_("The name may be at most %(max)s characters long."),
    "token.name_characters": N_("The name may not contain control characters."),
    "api.token_expired": N_("This API token has expired: issue a new one on the API tokens page."),
    "api.token_revoked": N_("This API token has been revoked."),
    "account.admin_only": N_("Only an administrator may manage users."),
    "account.email_taken": N_("A user with this e-mail address already exists."),
    "account.self_deactivate": N_("You cannot deactivate your own account."),
    "account.person_required": N_(
        "Enter the staff member's personnel number: four eyes compares people, not accounts."),
    "account.admin_no_case_role": N_(
        "This person has an administrator account, and administrators do no case work: "
        "they cannot also be counsellor, supervisor or finance officer."),
    "account.case_person_no_admin": N_(
        "This person has an account for case work (counsellor, supervisor or finance "
        "officer); an administrator account must belong to someone who does no case work."),
    "account.own_person": N_(
        "This is your own personnel number: an administrator cannot create accounts for "
        "himself or change the role of his own accounts."),
    "account.role_unchanged": N_("The account already has this role."),
    "account.request_exists": N_(
        "A request for this account is already waiting for a second administrator."),
    "account.no_such_request": N_("No such request."),
    "account.request_decided": N_("This request has already been decided."),
    "account.request_own": N_(
        "You made this request (or it comes from another account of yours); a different "
        "administrator must decide on it (four eyes)."),
    "account.request_own_person": N_(
        "This request concerns an account of your own person; another administrator must "
        "decide on it."),
    "account.request_stale": N_(
        "The account changed since the request was made; reject it and make a new one."),
    "figures.role": N_("Programme figures are for supervisors, finance officers and administrators."),
    # --- services: payments ---
    "payment.stale": N_("The payment was changed by someone else; reload it and try again."),
    "payment.none_to_approve": N_("There is no payment to approve."),
    "payment.none_to_reject": N_("There is no payment to reject."),
    "payment.none_to_cancel": N_("There is no payment to cancel."),
    "payment.replaced": N_("The current payment is %(current)s, not %(given)s."),
    "payment.version": N_("The payment is at version %(version)s."),
    "payment.propose_role": N_("Only a counsellor may propose a payment."),
    "payment.propose_state": N_(
        "Travel support can be proposed once the departure agreement is signed and agreed."),
    "payment.live_exists": N_("This case already has a live payment."),
    "payment.cancel_first": N_("Cancel or reject it first."),
    "payment.details_wrong": N_("The payment details are incomplete or wrong."),
    "payment.details_incomplete": N_("The payment details are incomplete."),
    "payment.iban_required": N_("An IBAN is required for a bank transfer."),
    "payment.iban_invalid": N_("Not a valid IBAN: %(why)s."),
    "payment.holder_required": N_("The account holder is required for a bank transfer."),
    "payment.no_tariff_today": N_("No travel-support tariff is in force today."),
    "payment.approve_role": N_("Only a supervisor may approve a payment."),
    "payment.reject_role": N_("Only a supervisor may reject a payment."),
    "payment.own_proposal": N_("You proposed this payment; someone else must decide on it (four eyes)."),
    "payment.own_proposal_detail": N_("The proposer can never decide on their own proposal."),
    "payment.own_proposal:person": N_(
        "This payment was proposed by another account of yours; a different person must "
        "decide on it (four eyes)."),
    "payment.reject_reason": N_("Say why the payment is rejected."),
    "payment.cancel_reason": N_("Say why the payment is cancelled."),
    "payment.whole_cents_example": N_("Whole cents, e.g. 150000."),
    "payment.cancel_role": N_("Only a counsellor or supervisor may cancel a payment."),
    "payment.already_paid": N_(
        "The travel support has already been paid out; it can no longer be cancelled."),
    "payment.in_export": N_(
        "This transfer was already handed to the bank in a finance export; ask finance to "
        "stop it there."),
    "payment.changed_first": N_("Someone else changed the payment first."),
    "payment.configure_tariff": N_("Configure a tariff in the policy."),
    "payment.cancel_role_detail": N_("Only a counsellor or supervisor may cancel."),
    "payment.reclaim_instead": N_("Record a re-entry with a reclaim instead."),
    "payment.new_key": N_("Use a new key for a new request."),
    "payment.role_detail": N_("Only a counsellor or supervisor may."),
    "payment.nothing_to_reclaim": N_("Nothing to reclaim."),
    "payment.nothing_exported": N_("Nothing was exported."),
    "payment.idempotency_reused": N_("This idempotency key was already used for a different request."),
    "payment.none_approved": N_("There is no approved payment to pay out."),
    "payment.reentry_role": N_("Only a counsellor or supervisor may record a re-entry."),
    "payment.reentry_none_paid": N_("No travel support was paid out on this case."),
    "payment.reentry_exists": N_("A re-entry is already recorded for this case."),
    "payment.whole_cents": N_("Amounts are whole cents."),
    "payment.reentry_invalid": N_("The re-entry cannot be recorded like this."),
    "payment.case_has_none": N_("Case %(ref)s has no payment."),
    "payment.not_found": N_("Case %(ref)s has no payment %(id)s."),
    # --- services: work queues ---
    "queue.not_found": N_("No work queue %(name)s for your role."),
    "payment.export_kind": N_("Unknown export kind."),
    "payment.export_nothing": N_("No released bank transfers are waiting for a batch."),
    "payment.export_all_taken": N_("Every released transfer is already in a batch."),
    "batch.other_scope_waiting": N_("%(num)s released transfers wait for a batch of the other "
                                    "scope (%(scope)s)."),
    "batch.not_open": N_("This batch can no longer be sent or withdrawn."),
    "batch.status_is": N_("The batch is %(status)s."),
    "batch.second_release": N_("A second finance officer must send this batch to the bank."),
    "batch.second_release:detail": N_("The batch's total (%(total)s) is above the "
                                      "limit of %(limit)s for one person: another "
                                      "finance officer than its maker must send it."),
    "batch.changed_first": N_("Someone else changed this batch first; reload and try again."),
    "batch.no_such_file": N_("Batch %(id)s has no %(format)s file."),
    "batch.no_such_transfer": N_("No bank transfer %(id)s."),
    "records.records_only": N_("Only a records manager or process owner may do this."),
    "records.process_owner_only": N_("Only a process owner may approve or return a "
                                     "destruction list."),
    "records.no_such_list": N_("No destruction list %(id)s."),
    "records.no_such_item": N_("No case %(id)s on this destruction list."),
    "records.no_such_hold": N_("No legal hold %(id)s."),
    "records.no_such_case": N_("No case with this reference."),
    "records.list_status": N_("This destruction list is not at the step this needs; reload "
                              "the list to see where it stands."),
    "records.changed_first": N_("Someone else changed this destruction list first; reload "
                                "and try again."),
    "records.same_reviewer": N_("The person who reviewed a destruction list cannot also "
                                "approve it: a second person must."),
    "records.hold_lifted": N_("This legal hold was already lifted."),
    "records.case_destroyed": N_("This case was destroyed; only its tombstone remains."),
    # access requests (issue 16)
    "access_request.role": N_("Only a records manager may register and answer access requests."),
    "access_request.not_found": N_("No access request %(id)s."),
    "access_request.closed": N_("This access request was delivered or refused already; it "
                                "can no longer change."),
    "access_request.already_extended": N_("The term of this access request was extended "
                                          "once already; it cannot be extended again."),
    "access_request.extension_late": N_("The term can only be extended before it ends "
                                        "(%(date)s)."),
    "access_request.received_future": N_("The date of receipt cannot be after today."),
    "access_request.not_downloaded": N_("Download the package first: the delivery records "
                                        "the package handed over."),
    "statement.finance_only": N_("Only a finance officer may import and reconcile bank "
                                 "statements."),
    "statement.refused": N_("The bank statement was not imported; nothing was changed."),
    "statement.too_large": N_("The file is larger than %(max_bytes)s bytes."),
    "statement.forbidden": N_("The file declares a document type or external entities, "
                              "which a bank statement never does."),
    "statement.malformed": N_("The file is not well-formed (line %(line)s)."),
    "statement.invalid": N_("The file does not match the bank-statement schema."),
    "statement.unsupported": N_("This is not a camt.053 (version 02 or 08) or MT940 "
                                "statement."),
    "statement.empty": N_("The statement holds no entries."),
    "statement.busy": N_("The same statement is being imported right now; try again."),
    "statement.no_entry": N_("No entry %(id)s on the review list."),
    "statement.entry_resolved": N_("This entry was already decided."),
    "statement.amount_differs": N_("The entry's amount differs from this payment's amount."),
    "report.month_format": N_("A month as YYYY-MM, e.g. 2026-11."),
    "payment.no_place_for_transfer": N_("A bank transfer is not handed over: leave the place "
                                        "empty."),
    "payment.reproposal_state": N_("A corrected payment can be proposed only after the bank "
                                   "returned the previous one."),
    "payment.export_failed": N_("The export file could not be made."),
    "payment.export_race": N_(
        "Another export took some of these payments at the same moment; try again."),
    "payment.no_export": N_("No export %(id)s."),
    "payment.decide_role": N_("Only a supervisor may approve or reject a payment."),
    "payment.disburse_four_eyes": N_(
        "You proposed or approved this payment; another finance officer must pay it out."),
    "payment.disburse_four_eyes:person": N_(
        "This payment was proposed or approved by another account of yours; a different "
        "person must pay it out (four eyes)."),
    "payment.iban_checksum": N_(
        "The IBAN's check digits do not match: a character was probably mistyped. Check it "
        "against the bank card or statement."),
    "payment.iban_length": N_(
        "The IBAN has %(length)s characters, which is the wrong length for an account in "
        "%(country)s."),
    "payment.iban_country": N_("The IBAN starts with '%(country)s', which is not a known country code."),
    "payment.iban_layout": N_(
        "This is not a valid IBAN: it may contain only letters and digits (spaces are fine) in "
        "the layout of the account's country."),
    "payment.method_one_of": N_("Choose one of: %(methods)s."),
    "payment.holder_max": N_("At most %(max)s characters."),
    "payment.no_iban_for": N_("No IBAN is used for %(method)s."),
    "payment.no_holder_for": N_("No account holder is used for %(method)s."),
    "payment.reclaim_negative": N_("The amount to reclaim cannot be negative."),
    "payment.reclaim_too_much": N_(
        "The amount to reclaim (%(reclaim)s) is more than was paid (%(paid)s)."),
    "payment.reentry_before_departure": N_("The re-entry date is before the departure (%(date)s)."),
    "case.version": N_("The case is at version %(version)s."),
    "payment.live_detail": N_("Payment %(id)s is %(status)s; cancel or reject it first."),
    "payment.exported_in": N_("Exported in batch %(batch)s."),
    "payment.reentry_on": N_("Re-entry on %(date)s."),
    "payment.paid_out_is": N_("The paid-out payment is %(id)s."),
    "payment.outside_sepa": NP_(
        "%(num)s transfer to an account outside the SEPA zone waits for a CSV export.",
        "%(num)s transfers to accounts outside the SEPA zone wait for a CSV export."),
    "payment.wrong_state:approve": N_("Approving travel support is only possible while the case is %(state)s."),
    "payment.wrong_state:reentry": N_("Recording a re-entry is only possible while the case is %(state)s."),
    "payment.finance_only:export": N_("Only a finance officer may export payments."),
    "payment.finance_only:see": N_("Only a finance officer may see finance exports."),
    "payment.finance_only:download": N_("Only a finance officer may download finance exports."),
    "payment.none_to_approve:detail": N_(
        "The case's current payment is %(status)s; only a %(statuses)s payment can be approved."),
    "payment.none_to_reject:detail": N_(
        "The case's current payment is %(status)s; only a %(statuses)s payment can be rejected."),
    "payment.none_to_cancel:detail": N_(
        "The case's current payment is %(status)s; only a %(statuses)s payment can be cancelled."),
    "payment.reentry_future": N_("The re-entry date cannot be in the future."),
    # --- services: signing (participants see the link_* and signature ones) ---
    "signing.unknown_kind": N_("Unknown document kind."),
    "signing.kind_one_of": N_("One of: %(kinds)s."),
    "signing.wrong_state": N_("This document cannot be signed while the case is %(state)s."),
    "signing.deadline_invalid": N_("The departure deadline is not acceptable."),
    "signing.consent_required": N_("Consent is required."),
    "signing.acknowledgement_required": N_(
        "This condition must be confirmed separately before signing."),
    "signing.draw_signature": N_("Draw your signature."),
    "signing.drawing_too_large": N_("The drawn signature is too large."),
    "signing.type_name": N_("Type your full name."),
    "signing.name_too_long": N_("The name is too long."),
    "signing.name_characters": N_(
        "Your name may contain only letters, spaces, hyphens and apostrophes."),
    "signing.name_mismatch": N_("The typed name is not the signer's registered name."),
    "signing.minors_do_not_sign": N_("Minors do not sign."),
    "signing.participant_is_minor": N_("This participant is a minor."),
    "signing.extension_reason": N_("Say why the deadline is extended."),
    "signing.identity_document_checked": N_("Record the identity document you checked."),
    "signing.cannot_prepare": N_("The document could not be prepared from this input."),
    "signing.case_changed": N_(
        "The case changed while the document was being prepared; please sign again."),
    "signing.document_mismatch": N_("The document no longer matches the case."),
    "signing.office_role": N_("Only a counsellor can take a signature at the office."),
    "signing.id_document": N_("Say which identity document was checked."),
    "signing.link_role": N_("Only a counsellor can create a signing link."),
    "signing.link_invalid": N_("This signing link is not valid."),
    "signing.link_used": N_("This signing link has already been used; the document is signed."),
    "signing.link_withdrawn": N_("This signing link was withdrawn by your counsellor."),
    "signing.link_expired": N_("This signing link has expired; ask your counsellor for a new one."),
    "signing.revoke_role": N_("Only a counsellor can withdraw a signing link."),
    "signing.links_role": N_("Only a counsellor can see the signing links of a case."),
    "signing.no_link": N_("No signing link %(id)s on case %(ref)s."),
    "signing.link_done": N_("This signing link was already used or withdrawn."),
    "signing.code_required": N_("Enter the code sent to you before signing this document."),
    "signing.code_wrong": N_("This code is not right."),
    "signing.code_locked": N_("Too many wrong codes: this code is locked. Ask for a new one."),
    "signing.code_expired": N_("This code has expired. Ask for a new one."),
    "signing.code_none": N_("There is no code to check. Ask for a code first."),
    "signing.code_format": N_("The code has 6 digits."),
    "signing.code_channel": N_("No code can be sent this way: no such contact is registered."),
    "signing.code_not_needed": N_("This document needs no code."),
    "signing.code_undeliverable": N_("The code could not be sent. Try another way or try again later."),
    "signing.link_declined": N_("You declined to sign through this link; ask your counsellor "
                                "for a new one if you change your mind."),
    "signing.decline_reason": N_("Say why you do not want to sign: choose a reason or write "
                                 "it in your own words."),
    "signing.decline_reason_long": N_("Your reason can have at most %(max)s characters."),
    "signing.decline_reason_characters": N_("Your reason contains a character that cannot be "
                                            "stored (a control character). Please remove it."),
    "signing.copy_no_email": N_("This participant has no e-mail address: print the copy "
                                "instead."),
    "signing.copy_not_signed": N_("This document has no signed copy to send."),
    # --- schemas ---
    "validate.blank": N_("Must not be blank."),
    "validate.v_number": N_("A V-number is exactly 10 digits."),
    "validate.bsn": N_("Not a valid BSN: it must be 9 digits and pass the 11-check."),
    "validate.oblast": N_("Not an ISO 3166-2:UA region code (UA-05 … UA-77, UA-30 for Kyiv)."),
    "validate.birth_future": N_("A date of birth cannot be in the future."),
    "validate.birth_1900": N_("A date of birth before 1900 is not plausible."),
    "validate.cyrillic": N_("Write this name in Cyrillic letters."),
    "validate.phone": N_("Not a phone number."),
    "validate.v_number_twice": N_("The same V-number appears twice on this case."),
    "validate.ind_future": N_("The IND cannot have confirmed in the future."),
    "validate.reference_chars": N_("Letters, digits and ./- only."),
    "validate.idempotency_key": N_("8–100 letters, digits or ._:-"),
    "validate.password_length": N_("Use 12 to 200 characters."),
    "validate.control_character": N_(
        "Contains a control character (such as a bell or escape character); remove it."),
    "validate.unstorable": N_("Contains a character that cannot be stored (a lone surrogate)."),
    "validate.password_common": N_(
        "This password is one that many people use; choose another, for example a few "
        "unrelated words."),
    "validate.password_pattern": N_(
        "This password is a repetition or a simple sequence (like aaaa… or 1234…); choose "
        "another."),
    "validate.password_context": N_(
        "A password may not contain the e-mail address, the name or the name of the "
        "service (returnprog, DTenV)."),
    "validate.person_number": N_("A personnel number is 1 to 20 letters, digits or hyphens."),
    "validate.search_short": N_(
        "Type at least 3 letters or digits of a name, a case reference or a V-number."),
    "validate.deadline_range": N_("The end of the deadline range is before its start."),
    "validate.user_id": N_("Give the staff member's id (a whole number)."),
    # --- marshmallow's own (English as marshmallow words it, so the API is unchanged) ---
    "field.required": N_("Missing data for required field."),
    "field.null": N_("Field may not be null."),
    "field.invalid_date": N_("Not a valid date."),
    "field.invalid_datetime": N_("Not a valid datetime."),
    "field.invalid_email": N_("Not a valid email address."),
    "field.invalid_integer": N_("Not a valid integer."),
    "field.invalid_number": N_("Not a valid number."),
    "field.too_large": N_("Number too large."),
    "field.invalid_boolean": N_("Not a valid boolean."),
    "field.invalid_string": N_("Not a valid string."),
    "field.invalid_utf8": N_("Not a valid utf-8 string."),
    "field.invalid_list": N_("Not a valid list."),
    "field.invalid_mapping": N_("Not a valid mapping type."),
    "field.invalid": N_("Invalid value."),
    "field.unknown": N_("Unknown field."),
    "field.invalid_input_type": N_("Invalid input type."),
    "validate.one_of": N_("Must be one of: %(choices)s."),
    "validate.length_min": N_("Shorter than minimum length %(min)s."),
    "validate.length_max": N_("Longer than maximum length %(max)s."),
    "validate.length_between": N_("Length must be between %(min)s and %(max)s."),
    "validate.length_equal": N_("Length must be %(equal)s."),
    "validate.regexp": N_("String does not match expected pattern."),
    "validate.range_between": N_(
        "Must be greater than or equal to %(min)s and less than or equal to %(max)s."),
    "validate.range_min": N_("Must be greater than or equal to %(min)s."),
    "validate.range_max": N_("Must be less than or equal to %(max)s."),
    "validate.invalid": N_("Invalid value."),
    # --- counts ---
    "count.persons": NP_("%(num)s person", "%(num)s persons"),
    "count.adults": NP_("%(num)s adult", "%(num)s adults"),
    "count.minors": NP_("%(num)s minor", "%(num)s minors"),
}

# Codes a participant can read on the signing pages: translated into uk, ru, en and nl.
PARTICIPANT_CODES = frozenset({
    "signing.link_invalid", "signing.link_used", "signing.link_withdrawn",
    "signing.link_expired", "signing.consent_required", "signing.acknowledgement_required",
    "signing.name_characters", "signing.name_mismatch",
    "signing.draw_signature", "signing.drawing_too_large", "signing.type_name",
    "signing.name_too_long", "signing.minors_do_not_sign", "signing.case_changed",
    "signing.link_declined", "signing.decline_reason", "signing.decline_reason_long",
    "signing.decline_reason_characters",
    "signing.cannot_prepare", "signing.wrong_state", "error.invalid_fields",
    "case.unknown_participant", "case.busy",
})

# Parameter name -> kind of formatter (see the module docstring).
PARAM_KINDS = {"date": "date", "deadline": "date", "current_date": "date", "signed_on": "date",
               "cents": "money", "tariff": "money", "state": "state", "states": "states",
               "action": "action", "roles": "roles", "names": "names",
               "reclaim": "euro", "paid": "euro", "total": "euro", "limit": "euro", "statuses": "alternatives", "method": "pay_method"}


# English button label of each workflow action, by name. The workflow table owns the
# labels and fills this in when it is imported (it imports this module, not the reverse).
ACTION_LABELS: dict[str, str] = {}


def _action_label(name: str) -> str:
    return ACTION_LABELS.get(name, str(name))


def _method_label(method: str) -> str:
    return METHOD_LABELS.get(method, method)


def _euro(cents: int) -> str:
    return format_cents(cents)


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)


def _seq(value) -> list:
    return [value] if isinstance(value, str) else list(value)


# The English of the API: the words the services always said.
ENGLISH_FORMATS: dict[str, Callable] = {
    "date": _iso,
    "money": lambda cents: f"{cents} cents",
    "state": str,
    "states": lambda states: ", ".join(str(s) for s in _seq(states)),
    "action": _action_label,
    "roles": lambda roles: " or ".join(sorted(_seq(roles))),
    "names": lambda names: ", ".join(_seq(names)),
    "alternatives": lambda values: " or ".join(str(v) for v in _seq(values)),
    "pay_method": lambda method: _method_label(method),
    "euro": lambda cents: _euro(cents),
}


def _identity(text: str) -> str:
    return text


def _english_ngettext(singular: str, plural: str, n: int) -> str:
    return singular if n == 1 else plural


def render(code: str, params: Mapping | None = None, gettext: Callable[[str], str] = _identity,
           ngettext: Callable[[str, str, int], str] | None = None,
           formats: Mapping[str, Callable] | None = None) -> str:
    """The message ``code`` in the reader's language: ``gettext``/``ngettext`` return the
    unformatted translation; ``formats`` (kinds as in :data:`PARAM_KINDS`) localise the
    parameters. Without them: the API's English. Unknown codes raise KeyError."""
    entry = MESSAGES[code]
    params = dict(params or {})
    fmts = {**ENGLISH_FORMATS, **(formats or {})}
    values = {}
    for key, value in params.items():
        kind = PARAM_KINDS.get(key)
        values[key] = fmts[kind](value) if kind and value is not None else value
    if isinstance(entry, Plural):
        values.setdefault(entry.count, params.get(entry.count))
        text = (ngettext or _english_ngettext)(entry.singular, entry.plural,
                                               int(params[entry.count]))
    else:
        text = gettext(entry)
    return text % values if "%(" in text else text


class Message(str):
    """A message by code: as a string it is its English rendering (what the API and the
    logs show); the UI renders ``code`` and ``params`` in its own language instead.

    ``format`` keeps the code, so marshmallow's ``message.format(min=..)`` on a Message
    given as its default error message yields a Message with those parameters.
    """

    code: str
    params: dict

    def __new__(cls, code: str, params: Mapping | None = None):
        params = dict(params or {})
        obj = super().__new__(cls, render(code, params))
        obj.code, obj.params = code, params
        return obj

    def format(self, *args, **kwargs) -> "Message":  # noqa: A003 - marshmallow calls it
        """A copy with more parameters (marshmallow formats its messages this way)."""
        return Message(self.code, {**self.params, **kwargs})

    def __reduce__(self):
        return (Message, (self.code, self.params))


def M(code: str, **params) -> Message:
    """The message ``code`` with ``params``: the short way to write one in a service."""
    return Message(code, params)


@dataclass(frozen=True, init=False)
class Refusal:
    """One unmet condition of the workflow: ``Refusal(message_code, params, field)``.

    ``code`` is the stable code programs read: the message code without its ``:variant``
    (two wordings of one refusal share it); ``message_code`` picks the sentence.
    """

    code: str
    params: Mapping
    field: str | None
    message_code: str

    def __init__(self, code: str, params: Mapping | None = None, field: str | None = None):
        if code not in MESSAGES:
            raise KeyError(f"unknown message code {code!r}")
        object.__setattr__(self, "message_code", code)
        object.__setattr__(self, "code", code.split(":", 1)[0])
        object.__setattr__(self, "params", dict(params or {}))
        object.__setattr__(self, "field", field)

    def __hash__(self) -> int:
        return hash((self.message_code, self.field, tuple(sorted(map(str, self.params)))))

    @property
    def message(self) -> Message:
        """The refusal as a Message (English as a string)."""
        return Message(self.message_code, self.params)

    def as_dict(self) -> dict:
        """JSON-ready form used by the API's error details; ``message`` is English text
        that still knows its code, so the UI can render it in its language."""
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


def install_marshmallow_messages() -> None:
    """Give marshmallow's own fields and validators coded messages (one place, once), so
    forms can show "required", "not a valid date" etc. in the reader's language."""
    from marshmallow import Schema, fields, validate

    field_codes = {
        fields.Field: {"required": "field.required", "null": "field.null",
                       "validator_failed": "field.invalid"},
        fields.String: {"invalid": "field.invalid_string", "invalid_utf8": "field.invalid_utf8"},
        fields.Number: {"invalid": "field.invalid_number", "too_large": "field.too_large"},
        fields.Integer: {"invalid": "field.invalid_integer"},
        fields.Boolean: {"invalid": "field.invalid_boolean"},
        fields.Date: {"invalid": "field.invalid_date"},
        fields.DateTime: {"invalid": "field.invalid_datetime"},
        fields.Email: {"invalid": "field.invalid_email"},
        fields.List: {"invalid": "field.invalid_list"},
        fields.Dict: {"invalid": "field.invalid_mapping"},
        fields.Nested: {"type": "field.invalid_input_type"},
    }
    for cls, codes in field_codes.items():
        cls.default_error_messages = {**cls.default_error_messages,
                                      **{key: Message(code) for key, code in codes.items()}}
    Schema._default_error_messages = {**Schema._default_error_messages,
                                      "type": Message("field.invalid_input_type"),
                                      "unknown": Message("field.unknown")}
    validate.OneOf.default_message = Message("validate.one_of", {"choices": ""})
    validate.Length.message_min = Message("validate.length_min", {"min": 0})
    validate.Length.message_max = Message("validate.length_max", {"max": 0})
    validate.Length.message_all = Message("validate.length_between", {"min": 0, "max": 0})
    validate.Length.message_equal = Message("validate.length_equal", {"equal": 0})
    validate.Regexp.default_message = Message("validate.regexp")
    validate.Range.message_all = Message("validate.range_between", {"min": 0, "max": 0})
    validate.Range.message_min = Message("validate.range_min", {"min": 0})
    validate.Range.message_max = Message("validate.range_max", {"max": 0})
