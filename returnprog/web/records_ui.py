"""Records screens (issue 16): the retention rules in force, destruction lists and their
review by two people, and legal holds. Thin views over :mod:`returnprog.services.records`;
only records managers and process owners see them."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext as _

from ..roles import PROCESS_OWNER, RECORDS_MANAGER, RECORDS_ROLES
from ..services import NotFound, ServiceError
from ..services import records as records_service
from .ui import FormErrors, actor, ctx, errors_from, render_page, roles

bp = Blueprint("records", __name__, url_prefix="/records")

MAX_ID = 2**31 - 1


def _id(value: int) -> int:
    if value > MAX_ID:
        abort(404)
    return value


@bp.get("")
@roles(*RECORDS_ROLES)
def overview():
    """The retention rules in force and where the records lifecycle stands."""
    return render_page("records/overview.html", data=records_service.overview(ctx()))


@bp.route("/lists", methods=["GET", "POST"])
@roles(*RECORDS_ROLES)
def lists():
    """Destruction lists, newest first; a records manager may propose one now."""
    c = ctx()
    errors, status = FormErrors(), 200
    if request.method == "POST":
        if actor().role != RECORDS_MANAGER:
            abort(403)
        try:
            dlist = records_service.propose_list(c)
        except ServiceError as exc:
            c.session.rollback()
            errors, status = errors_from(exc)
        else:
            if dlist is None:
                flash(_("No case is due for destruction today."), "info")
                return redirect(url_for("records.lists"), 303)
            flash(_("Destruction list %(id)s proposed.", id=dlist.id), "success")
            return redirect(url_for("records.destruction_list", list_id=dlist.id), 303)
    return render_page("records/lists.html", status, lists=records_service.list_lists(c),
                       errors=errors)


def _list_page(c, list_id: int, errors: FormErrors, status: int = 200):
    try:
        data = records_service.read_list(c, list_id)
    except NotFound:
        abort(404)
    return render_page("records/list.html", status, data=data, errors=errors,
                       is_manager=actor().role == RECORDS_MANAGER,
                       is_owner=actor().role == PROCESS_OWNER)


@bp.get("/lists/<int:list_id>")
@roles(*RECORDS_ROLES)
def destruction_list(list_id: int):
    """One destruction list: its cases, who proposed, reviewed and approved it, and the
    next step for the person looking."""
    return _list_page(ctx(), _id(list_id), FormErrors())


# Each step: who takes it, and the service call.
STEPS = {
    "review": (RECORDS_MANAGER, lambda c, i: records_service.review_list(c, i)),
    "cancel": (RECORDS_MANAGER,
               lambda c, i: records_service.cancel_list(c, i, request.form.get("reason", ""))),
    "approve": (PROCESS_OWNER, lambda c, i: records_service.approve_list(c, i)),
    "return": (PROCESS_OWNER,
               lambda c, i: records_service.return_list(c, i, request.form.get("reason", ""))),
}
# What each step's success says (literal msgids, for the message catalogue).
_FLASHES = {
    "review": lambda i: _("Destruction list %(id)s is reviewed; a process owner approves it "
                          "next.", id=i),
    "cancel": lambda i: _("Destruction list %(id)s was cancelled; its cases are kept.", id=i),
    "approve": lambda i: _("Destruction list %(id)s is approved; its cases are destroyed at "
                           "the next run of the records job.", id=i),
    "return": lambda i: _("Destruction list %(id)s went back to the records manager.", id=i),
}


@bp.post("/lists/<int:list_id>/<any(review, cancel, approve, return):decision>")
@roles(*RECORDS_ROLES)
def list_step(list_id: int, decision: str):
    """A records manager reviews or cancels a list; a process owner approves it or sends
    it back with a reason."""
    list_id = _id(list_id)
    role, run = STEPS[decision]
    if actor().role != role:
        abort(403)
    c = ctx()
    try:
        run(c, list_id)
    except NotFound:
        abort(404)
    except ServiceError as exc:
        c.session.rollback()
        errors, status = errors_from(exc, fields_known=("reason",))
        return _list_page(c, list_id, errors, status)
    flash(_FLASHES[decision](list_id), "success")
    return redirect(url_for("records.destruction_list", list_id=list_id), 303)


@bp.post("/lists/<int:list_id>/items/<int:item_id>/remove")
@roles(RECORDS_MANAGER)
def remove_item(list_id: int, item_id: int):
    """Take one case off a proposed list, with a reason: it is kept."""
    list_id, item_id = _id(list_id), _id(item_id)
    c = ctx()
    try:
        item = records_service.remove_from_list(c, list_id, item_id,
                                                request.form.get("reason", ""))
    except NotFound:
        abort(404)
    except ServiceError as exc:
        c.session.rollback()
        errors, status = errors_from(exc, fields_known=("reason",))
        return _list_page(c, list_id, errors, status)
    flash(_("Case %(reference)s was taken off the list and is kept.",
            reference=item.reference), "success")
    return redirect(url_for("records.destruction_list", list_id=list_id), 303)


@bp.route("/holds", methods=["GET", "POST"])
@roles(*RECORDS_ROLES)
def holds():
    """Legal holds in force, and the form to place one on a case by its reference."""
    c = ctx()
    errors, status = FormErrors(), 200
    if request.method == "POST":
        try:
            hold = records_service.place_hold(c, request.form.get("reference", ""),
                                              request.form.get("reason", ""),
                                              request.form.get("note", ""))
        except ServiceError as exc:
            c.session.rollback()
            errors, status = errors_from(exc, fields_known=("reference", "reason", "note"))
        else:
            flash(_("The case is on hold: it is not destroyed while the hold is in force "
                    "(hold %(id)s).", id=hold.id), "success")
            return redirect(url_for("records.holds"), 303)
    return render_page("records/holds.html", status, holds=records_service.list_holds(c),
                       reasons=records_service.HOLD_REASONS, errors=errors,
                       form=request.form)


@bp.post("/holds/<int:hold_id>/lift")
@roles(*RECORDS_ROLES)
def lift_hold(hold_id: int):
    """Lift a hold, saying why."""
    hold_id = _id(hold_id)
    c = ctx()
    try:
        records_service.lift_hold(c, hold_id, request.form.get("note", ""))
    except NotFound:
        abort(404)
    except ServiceError as exc:
        c.session.rollback()
        errors, status = errors_from(exc, fields_known=("note",))
        return render_page("records/holds.html", status, holds=records_service.list_holds(c),
                           reasons=records_service.HOLD_REASONS, errors=errors, form={})
    flash(_("Hold %(id)s was lifted.", id=hold_id), "success")
    return redirect(url_for("records.holds"), 303)
