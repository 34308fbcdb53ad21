"""The work-queue pages ("Mijn werk"): one page per queue of the reader's role, each row
linking straight to the form of the case's next step. The counts are on the dashboard.

The queues come from :mod:`returnprog.services.queues`; this module only turns a step into
the URL of its form and shows the rows.
"""
from __future__ import annotations

from flask import Blueprint, url_for

from .. import queues as rules
from .. import workflow
from ..glossary import N_
from ..roles import CASE_ROLES
from ..services import queues as queue_service
from .pages import action_url
from .ui import ctx, render_page, roles

bp = Blueprint("queues", __name__)

# What each queue is called and what it holds (msgids; Dutch in the catalogue).
QUEUE_TITLES = {
    rules.MINE: N_("Waiting on me"),
    rules.PARTICIPANT: N_("Waiting on the participant"),
    rules.IND: N_("Waiting on the IND"),
    rules.APPROVALS: N_("Payments to decide"),
    rules.EXTENSIONS: N_("Extensions to decide"),
    rules.OVERDUE: N_("Overdue cases"),
    rules.TO_PAY: N_("Payments to pay out"),
}
QUEUE_HINTS = {
    rules.MINE: N_("Your cases whose next step is yours: each link opens its form."),
    rules.PARTICIPANT: N_("Signing links sent and not signed yet. Links that expire within "
                          "48 hours or have expired are marked."),
    rules.IND: N_("The withdrawal declarations are signed; the IND's confirmation has not "
                  "been recorded yet."),
    rules.APPROVALS: N_("Travel-support proposals of your team waiting for a second person's "
                        "decision. Your own proposals are not listed: another supervisor "
                        "decides on them."),
    rules.EXTENSIONS: N_("Every adult has signed an addendum for a later departure deadline: "
                         "extend the deadline."),
    rules.OVERDUE: N_("The departure deadline has passed without a confirmed departure: "
                      "extend the deadline or let the participation lapse."),
    rules.TO_PAY: N_("Approved travel support waiting to be paid out. Bank transfers not in "
                     "an export yet are marked."),
}
# The steps around the workflow actions (actions use their own button labels).
STEP_LABELS = {
    rules.COMPLETE_INTAKE: N_("Complete the intake"),
    rules.SIGN: N_("Have the documents signed"),
    rules.RECORD_IND: N_("Record the IND confirmation"),
    rules.PROPOSE_PAYMENT: N_("Propose travel support"),
    rules.DECIDE_PAYMENT: N_("Decide on the payment"),
    rules.OPEN_CASE_PAGE: N_("Open the case"),
}


def step_url(reference: str, step: str) -> str:
    """The form of ``step`` on case ``reference``: a workflow action's own form, or the page
    where the step around it is taken."""
    if step in workflow.CASE_ACTIONS:
        return action_url(reference, step)
    endpoint = {rules.COMPLETE_INTAKE: "pages.edit_intake", rules.SIGN: "signing.choose",
                rules.PROPOSE_PAYMENT: "payments_ui.propose",
                rules.DECIDE_PAYMENT: "payments_ui.case_payment"}.get(step)
    if step == rules.RECORD_IND:
        # The IND confirmations are recorded on the withdrawal's form.
        return action_url(reference, "record_withdrawal")
    return url_for(endpoint or "pages.case_page", reference=reference)


@bp.app_context_processor
def _helpers():
    return {"queue_titles": QUEUE_TITLES, "step_labels": STEP_LABELS, "step_url": step_url,
            # The menu's "My work" opens each role's first queue.
            "queue_home": {role: names[0] for role, names in rules.QUEUES_BY_ROLE.items()}}


@bp.get("/queues/<name>")
@roles(*CASE_ROLES)
def queue(name: str):
    """One of my work queues: the cases in it and a link to each one's next step."""
    rows = queue_service.work_queues(ctx(), only=name)[name]
    return render_page("queues/show.html", name=name, rows=rows, hint=QUEUE_HINTS[name],
                       names=queue_service.queue_names(ctx().actor.role))
