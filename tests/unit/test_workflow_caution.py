"""Which steps are side exits and which cannot be undone is data in the workflow table
(issue 13): the case page orders and guards steps by it, so the table must say it right."""
from __future__ import annotations

from returnprog import workflow
from returnprog.workflow import ACTIONS, CASE_ACTIONS, FINAL_STATES, MAIN_LINE, State


def test_every_exit_off_the_main_line_is_destructive_and_confirmed():
    exits = {n for n, a in ACTIONS.items() if a.sources and a.target not in MAIN_LINE}
    assert exits == {"leave_programme", "reject", "lapse"}
    assert {n for n, a in ACTIONS.items() if a.destructive} == exits
    assert all(ACTIONS[n].needs_confirmation for n in exits)
    assert all(ACTIONS[n].target in FINAL_STATES for n in exits)


def test_the_withdrawal_is_confirmed_but_stays_on_the_main_line():
    withdrawal = ACTIONS["record_withdrawal"]
    assert withdrawal.needs_confirmation and not withdrawal.destructive
    assert "cannot be undone" in withdrawal.consequence
    # Steps that can be followed by a correction or are the programme's own end ask nothing.
    assert not ACTIONS["confirm_commitment"].needs_confirmation
    assert not ACTIONS["agree_departure"].needs_confirmation


def test_step_order_puts_the_main_line_first_in_programme_order():
    ordered = sorted(CASE_ACTIONS, key=workflow.step_order)
    main = [n for n in ordered if not ACTIONS[n].destructive]
    assert ordered[:len(main)] == main  # every exit after every main-line step
    assert [ACTIONS[n].target for n in main] == sorted(
        (ACTIONS[n].target for n in main), key=list(MAIN_LINE).index)
    # In intake the counsellor's first step is the commitment, not leaving.
    intake = [n for n in ordered if State.INTAKE in ACTIONS[n].sources]
    assert intake[0] == "confirm_commitment" and intake[-1] in ("leave_programme", "reject")
