"""Who may open what: the expected answer of every route × role × own/other team's case.

Data only; ``tests/test_web_permissions.py`` walks ``app.url_map`` and fails for any route
(endpoint + method) without an entry here, and for any entry whose route is gone.

An entry maps a role to an expectation, or to ``{"own": …, "other": …}`` for routes about a
case (``own``: a case of the role's team — or, for finance, a case with a payment;
``other``: another team's case without a payment). Expectations:

- ``OK`` (200) — the page is shown;
- ``PASS`` — the view ran for this person: 200, 303, 409 or 422 (the matrix POSTs only a
  CSRF token, so a form answers "field missing", "not possible now" or does its thing);
- ``FORBIDDEN`` (403) — signed in, but the role may not;
- ``HIDDEN`` (404) — a case (or document) the person may not see: indistinguishable
  from one that does not exist;
- ``LOGIN`` — not signed in: redirected to the sign-in page;
- ``REDIRECT`` — sent elsewhere (302/303), e.g. the sign-in page when already signed in;
- an int — exactly that status.

Routes answered elsewhere: ``API`` (bearer tokens only; the test checks that a session
cookie alone gets 401), ``STATIC`` (public files), and ``covered_by("tests/…")`` for
routes whose rules are tested by their own suite (e.g. token-based participant pages).
Route parameters are filled by ``PARAMS`` (add a filler for a new parameter name).
"""
from __future__ import annotations

OK = 200
FORBIDDEN = 403
HIDDEN = 404
PASS = "pass"
LOGIN = "login"
REDIRECT = "redirect"
API = "api: bearer only"
STATIC = "static"

ROLES = ("anonymous", "counsellor", "supervisor", "finance", "admin", "records_manager",
         "process_owner")
STAFF = ROLES[1:]
CASE_ROLES = ("counsellor", "supervisor", "finance")


class covered_by(str):
    """A route whose permissions are tested by another suite (named in the string)."""


def everyone(expect, anonymous=LOGIN) -> dict:
    """Every signed-in role gets ``expect``."""
    return {"anonymous": anonymous, **{r: expect for r in STAFF}}


def only(*roles: str, expect=OK, anonymous=LOGIN) -> dict:
    """``roles`` get ``expect``; other signed-in roles 403."""
    return {"anonymous": anonymous, **{r: expect if r in roles else FORBIDDEN for r in STAFF}}


def on_case(*roles: str, expect=OK, own_for_others=FORBIDDEN, anonymous=LOGIN) -> dict:
    """A route about one case: ``roles`` get ``expect`` on their own case; the other case-
    seeing roles ``own_for_others`` on it; everybody 404 on the other team's case; admins,
    who see no case files, 403."""
    out = {"anonymous": anonymous, **{r: FORBIDDEN for r in STAFF if r not in CASE_ROLES}}
    for role in CASE_ROLES:
        out[role] = {"own": expect if role in roles else own_for_others, "other": HIDDEN}
    return out


ACTION_ROLES = {
    "confirm_commitment": ("counsellor",), "record_withdrawal": ("counsellor",),
    "agree_departure": ("counsellor",), "extend_deadline": ("supervisor",),
    "pay_support": ("finance",), "confirm_departure": ("counsellor",),
    "leave_programme": ("counsellor",), "reject": ("supervisor",), "lapse": ("supervisor",),
}

MATRIX: dict[tuple[str, str], object] = {
    # sign-in, sign-out, session, language
    ("auth.login", "GET"): {"anonymous": OK, **{r: REDIRECT for r in STAFF}},
    ("auth.login", "POST"): {"anonymous": PASS, **{r: REDIRECT for r in STAFF}},
    ("auth.logout", "POST"): everyone(PASS),
    ("auth.keepalive", "POST"): everyone(PASS),
    ("auth.language", "POST"): everyone(REDIRECT, anonymous=REDIRECT),
    # dashboard, cases
    ("pages.dashboard", "GET"): everyone(OK),
    ("pages.case_list", "GET"): only(*CASE_ROLES),
    ("pages.case_search", "POST"): only(*CASE_ROLES, expect=REDIRECT),
    ("pages.new_case", "GET"): only("counsellor"),
    ("pages.new_case", "POST"): only("counsellor", expect=PASS),
    ("pages.case_page", "GET"): on_case(*CASE_ROLES),
    # the own case is past intake: its intake can no longer be edited (409)
    ("pages.edit_intake", "GET"): on_case("counsellor", expect=409),
    ("pages.edit_intake", "POST"): on_case("counsellor", expect=PASS),
    # signed PDFs print the people's identity numbers: not for finance (least privilege)
    ("pages.download_document", "GET"): on_case("counsellor", "supervisor"),
    # corrections after signing (issue 13): the own case is past intake, so correctable
    ("corrections.correct_case", "GET"): on_case("counsellor"),
    ("corrections.correct_case", "POST"): on_case("counsellor", expect=PASS),
    ("pages.record_ind_confirmation", "POST"): on_case("counsellor", expect=PASS),
    # case notes and evidence files: counsellors and supervisors; finance needs neither
    ("case_files.notes", "GET"): on_case("counsellor", "supervisor"),
    ("case_files.add_note", "POST"): on_case("counsellor", "supervisor", expect=PASS),
    ("case_files.evidence_list", "GET"): on_case("counsellor", "supervisor"),
    ("case_files.upload_evidence", "POST"): on_case("counsellor", "supervisor", expect=PASS),
    ("case_files.download_evidence", "GET"): on_case("counsellor", "supervisor"),
    **{(f"pages.action_{a}", "GET"): on_case(*r) for a, r in ACTION_ROLES.items()},
    **{(f"pages.action_{a}", "POST"): on_case(*r, expect=PASS) for a, r in ACTION_ROLES.items()},
    # work queues: the filler names the counsellor's "mine" for the own case and the
    # supervisor's "approvals" for the other; a queue of another role is not found
    ("queues.queue", "GET"): {"anonymous": LOGIN, "admin": FORBIDDEN,
                              "records_manager": FORBIDDEN, "process_owner": FORBIDDEN,
                              "counsellor": {"own": OK, "other": HIDDEN},
                              "supervisor": {"own": HIDDEN, "other": OK},
                              "finance": {"own": HIDDEN, "other": HIDDEN}},
    # payments
    ("payments_ui.payment_list", "GET"): only("supervisor", "finance"),
    ("payments_ui.case_payment", "GET"): on_case(*CASE_ROLES),
    ("payments_ui.propose", "GET"): on_case("counsellor"),
    ("payments_ui.propose", "POST"): on_case("counsellor", expect=PASS),
    ("payments_ui.approve", "POST"): on_case("supervisor", expect=PASS),
    ("payments_ui.reject", "POST"): on_case("supervisor", expect=PASS),
    ("payments_ui.cancel", "POST"): on_case("counsellor", "supervisor", expect=PASS),
    ("payments_ui.reentry", "POST"): on_case("counsellor", "supervisor", expect=PASS),
    ("payments_ui.exports", "GET"): only("finance"),
    ("payments_ui.exports", "POST"): only("finance", expect=PASS),
    ("payments_ui.download_export", "GET"): only("finance"),
    ("payments_ui.batch_step", "POST"): only("finance", expect=PASS),
    ("payments_ui.statements", "GET"): only("finance"),
    ("payments_ui.statements", "POST"): only("finance", expect=PASS),
    ("payments_ui.review", "GET"): only("finance"),
    ("payments_ui.report", "GET"): only("finance"),
    ("payments_ui.report_csv", "GET"): only("finance"),
    ("payments_ui.resolve_entry", "POST"): only("finance", expect=PASS),
    # programme figures
    ("figures.programme", "GET"): only("supervisor", "finance", "admin"),
    ("figures.programme_csv", "GET"): only("supervisor", "finance", "admin"),
    # user administration
    # records lifecycle (issue 16): records managers and process owners only; the step
    # routes check which of the two may take the step
    ("records.overview", "GET"): only("records_manager", "process_owner"),
    ("records.lists", "GET"): only("records_manager", "process_owner"),
    ("records.lists", "POST"): {**only("records_manager", expect=PASS), "process_owner": FORBIDDEN},
    ("records.destruction_list", "GET"): only("records_manager", "process_owner", expect=HIDDEN),
    ("records.list_step", "POST"): only("records_manager", expect=HIDDEN),
    ("records.remove_item", "POST"): only("records_manager", expect=HIDDEN),
    ("records.holds", "GET"): only("records_manager", "process_owner"),
    ("records.holds", "POST"): only("records_manager", "process_owner", expect=PASS),
    ("records.lift_hold", "POST"): only("records_manager", "process_owner", expect=PASS),
    ("admin.users", "GET"): only("admin"),
    ("admin.new_user", "GET"): only("admin"),
    ("admin.new_user", "POST"): only("admin", expect=PASS),
    ("admin.deactivate", "POST"): only("admin", expect=PASS),
    ("admin.activate", "POST"): only("admin", expect=PASS),
    ("admin.reset_password", "GET"): only("admin"),
    ("admin.reset_password", "POST"): only("admin", expect=PASS),
    # API tokens: everyone manages their own (admins also others'); the revoke filler is a
    # token nobody has, so every role gets "not found"
    ("tokens.token_list", "GET"): everyone(OK),
    ("tokens.issue_token", "POST"): everyone(PASS),
    ("tokens.revoke_token", "POST"): everyone(HIDDEN),
    ("admin.change_role", "GET"): only("admin"),
    ("admin.change_role", "POST"): only("admin", expect=PASS),
    ("admin.requests", "GET"): only("admin"),
    ("admin.approve_request", "POST"): only("admin", expect=PASS),
    ("admin.reject_request", "POST"): only("admin", expect=PASS),
    # access requests (issue 16): the records roles see them; a records manager acts
    ("access_requests.access_list", "GET"): only("records_manager", "process_owner"),
    ("access_requests.new_request", "GET"): only("records_manager"),
    ("access_requests.new_request", "POST"): only("records_manager", expect=PASS),
    ("access_requests.show", "GET"): only("records_manager", "process_owner"),
    ("access_requests.package", "POST"): only("records_manager", expect=PASS),
    ("access_requests.extend", "POST"): only("records_manager", expect=PASS),
    ("access_requests.deliver", "POST"): only("records_manager", expect=PASS),
    ("access_requests.refuse", "POST"): only("records_manager", expect=PASS),
    ("access_requests.staff_log", "GET"): only("records_manager", "process_owner"),
    # signatures: counsellors take them on the tablet or send personal links; the link pages
    # themselves are public and token-based; anyone may verify a signed PDF
    ("signing.choose", "GET"): on_case("counsellor"),
    ("signing.tablet", "POST"): on_case("counsellor", expect=PASS),
    ("signing.tablet_sign", "POST"): on_case("counsellor", expect=PASS),
    # the tablet kiosk: only a session locked to the tablet reaches these
    ("signing.kiosk", "GET"): covered_by("tests/web/test_kiosk.py"),
    ("signing.kiosk_done", "GET"): covered_by("tests/web/test_kiosk.py"),
    ("signing.kiosk_hand_back", "GET"): covered_by("tests/web/test_kiosk.py"),
    ("signing.kiosk_hand_back", "POST"): covered_by("tests/web/test_kiosk.py"),
    ("signing.create_link", "POST"): on_case("counsellor", expect=PASS),
    ("signing.revoke_link", "POST"): on_case("counsellor", expect=PASS),
    # after a tablet signature: the signer's copy, e-mailed or printed (issue 12 item 3)
    ("signing.copy_offer", "GET"): on_case("counsellor"),
    ("signing.email_copy", "POST"): on_case("counsellor", expect=PASS),
    ("sign_link.page", "GET"): covered_by("tests/test_signing_links.py"),
    # the signer's copy (a cookie of the browser that signed) and declining to sign
    ("sign_link.copy", "GET"): covered_by("tests/web/test_signing_copy_decline.py"),
    ("sign_link.decline", "GET"): covered_by("tests/web/test_signing_copy_decline.py"),
    ("sign_link.decline", "POST"): covered_by("tests/web/test_signing_copy_decline.py"),
    ("sign_link.declined", "GET"): covered_by("tests/web/test_signing_copy_decline.py"),
    ("sign_link.sign", "POST"): covered_by("tests/test_signing_links.py"),
    ("sign_link.done", "GET"): covered_by("tests/test_signing_links.py"),
    # the one-time code steps of a link: public and token-based like the link page itself
    ("sign_link.send_code", "POST"): covered_by("tests/web/test_signing_codes_web.py"),
    ("sign_link.enter_code", "GET"): covered_by("tests/web/test_signing_codes_web.py"),
    ("sign_link.check_code", "POST"): covered_by("tests/web/test_signing_codes_web.py"),
    ("verify.verify_form", "GET"): everyone(OK, anonymous=OK),
    ("verify.verify_check", "POST"): everyone(PASS, anonymous=PASS),
    ("signing.static", "GET"): STATIC,
    # health endpoints for load balancers: public; not ready here (no scheduler has run)
    ("health.healthz", "GET"): everyone(OK, anonymous=OK),
    ("health.readyz", "GET"): everyone(503, anonymous=503),
    # files
    ("static", "GET"): STATIC,
    # the JSON API: bearer tokens only (tests/test_api*.py test who may do what there)
    ("api.list_cases", "GET"): API,
    ("api.search_cases", "POST"): API,
    ("api.create_case", "POST"): API,
    ("api.get_case", "GET"): API,
    ("api.get_trail", "GET"): API,
    ("api.get_events", "GET"): API,
    ("api.get_access_log", "GET"): API,
    ("api.correct_case", "POST"): API,
    ("api.update_case", "PUT"): API,
    ("api.add_ind_confirmation", "POST"): API,
    ("api.perform_action", "POST"): API,
    ("api.openapi", "GET"): API,
    ("api.list_notes", "GET"): API,
    ("api.add_note", "POST"): API,
    ("api.list_evidence", "GET"): API,
    ("api.upload_evidence", "POST"): API,
    ("api.download_evidence", "GET"): API,
    ("api_payments.get_payment", "GET"): API,
    ("api_payments.list_case_payments", "GET"): API,
    ("api_payments.propose_case_payment", "POST"): API,
    ("api_payments.read_case_payment", "GET"): API,
    ("api_payments.approve_case_payment", "POST"): API,
    ("api_payments.reject_case_payment", "POST"): API,
    ("api_payments.cancel_case_payment", "POST"): API,
    ("api_payments.pay_case_payment", "POST"): API,
    ("api_payments.record_case_payment_reentry", "POST"): API,
    ("api_payments.propose_payment", "POST"): API,
    ("api_payments.approve_payment", "POST"): API,
    ("api_payments.reject_payment", "POST"): API,
    ("api_payments.cancel_payment", "POST"): API,
    ("api_payments.record_reentry", "POST"): API,
    ("api_payments.list_payments", "GET"): API,
    ("api_payments.create_export", "POST"): API,
    ("api_payments.list_exports", "GET"): API,
    ("api_payments.download_export", "GET"): API,
    ("api_finance.list_batches", "GET"): API,
    ("api_finance.create_batch", "POST"): API,
    ("api_finance.get_batch", "GET"): API,
    ("api_finance.download_batch_file", "GET"): API,
    ("api_finance.send_batch", "POST"): API,
    ("api_finance.withdraw_batch", "POST"): API,
    ("api_finance.import_statement", "POST"): API,
    ("api_finance.list_statements", "GET"): API,
    ("api_finance.review_list", "GET"): API,
    ("api_finance.resolve_entry", "POST"): API,
    ("api_finance.reconciliation_report", "GET"): API,
    ("api_queues.queue_counts", "GET"): API,
    ("api_queues.queue_rows", "GET"): API,
    ("api_tokens.list_tokens", "GET"): API,
    ("api_tokens.revoke_token", "DELETE"): API,
    ("api_signing.create_signing_link", "POST"): API,
    ("api_signing.list_signing_links", "GET"): API,
    ("api_signing.resend_signing_link", "POST"): API,
    ("api_signing.revoke_signing_link", "DELETE"): API,
    ("api_signing.create_tablet_session", "POST"): API,
    ("api_signing.list_documents", "GET"): API,
    ("api_signing.download_document", "GET"): API,
    ("api_signing.verify_pdf", "POST"): API,
    ("api_webhooks.create_webhook", "POST"): API,
    ("api_webhooks.list_webhooks", "GET"): API,
    ("api_webhooks.get_webhook", "GET"): API,
    ("api_webhooks.delete_webhook", "DELETE"): API,
    ("api_webhooks.list_webhook_deliveries", "GET"): API,
    ("api_webhooks.redeliver_webhook", "POST"): API,
    ("api_records.list_access_requests", "GET"): API,
    ("api_records.get_access_request", "GET"): API,
    ("api_records.get_participant_processing_log", "GET"): API,
    ("api_records.get_staff_processing_log", "GET"): API,
}

# Route parameter → value, given the test world and whether the own or other case is meant.
PARAMS = {
    "reference": lambda world, which: world.own if which == "own" else world.other,
    "document_id": lambda world, which: world.own_doc if which == "own" else world.other_doc,
    "evidence_id": lambda world, which: world.own_evidence if which == "own" else world.other_evidence,
    "user_id": lambda world, which: world.victim_id,
    "batch_id": lambda world, which: world.batch_id,
    "request_id": lambda world, which: world.request_id,
    "access_request_id": lambda world, which: world.access_request_id,
    "action": lambda world, which: "confirm_commitment",
    "step": lambda world, which: "send",
    "entry_id": lambda world, which: 999_999,
    "fmt": lambda world, which: "csv",
    # a signing-link token nobody was given (the link pages answer 410), the pad's script
    "token": lambda world, which: "no-such-signing-link-token-0000000000000000",
    "filename": lambda world, which: "signature.js",
    "token_id": lambda world, which: 999_999,
    "link_id": lambda world, which: 999_999,
    "webhook_id": lambda world, which: 999_999,
    "delivery_id": lambda world, which: 999_999,
    "payment_id": lambda world, which: 999_999,
    "list_id": lambda world, which: 999_999,
    "item_id": lambda world, which: 999_999,
    "hold_id": lambda world, which: 999_999,
    "decision": lambda world, which: "review",
    "name": lambda world, which: "mine" if which == "own" else "approvals",
}

