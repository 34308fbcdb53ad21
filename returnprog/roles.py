"""The staff roles and the groups of them that rules refer to, named once (Flask-free).

Who may do a workflow action is in :mod:`returnprog.workflow` (``Action.roles``); this
module only names the roles and the groups that pages and services share.
"""
from __future__ import annotations

COUNSELLOR = "counsellor"
SUPERVISOR = "supervisor"
FINANCE = "finance"
ADMIN = "admin"
# Records lifecycle (issue 16): a records manager proposes and reviews destruction lists,
# holds cases and answers access requests; a process owner is the second reviewer who
# approves a destruction list. Neither works on cases.
RECORDS_MANAGER = "records_manager"
PROCESS_OWNER = "process_owner"

# Every role a staff account can have, in the order forms offer them.
ROLES = (COUNSELLOR, SUPERVISOR, FINANCE, ADMIN, RECORDS_MANAGER, PROCESS_OWNER)
# Roles that work on cases (an administrator manages accounts, not cases).
CASE_ROLES = (COUNSELLOR, SUPERVISOR, FINANCE)
# Roles that see the programme figures.
FIGURE_ROLES = (SUPERVISOR, FINANCE, ADMIN)
# Roles that see the payments overview across cases.
PAYMENT_OVERVIEW_ROLES = (SUPERVISOR, FINANCE)
# Roles that may cancel a payment or record a re-entry on a case they work on.
PAYMENT_FOLLOW_UP_ROLES = (COUNSELLOR, SUPERVISOR)
# Roles warned on the dashboard when reminder delivery is failing: they can act on it
# (an administrator fixes the mail set-up, a supervisor has the team contact people).
DELIVERY_WATCHERS = (SUPERVISOR, ADMIN)
# Roles that take signatures at the office and hand out personal signing links.
SIGNATURE_TAKERS = (COUNSELLOR,)
# Roles that read and write a case's notes and evidence files (finance officers see a case
# for its payment and need neither).
CASE_FILE_ROLES = (COUNSELLOR, SUPERVISOR)
# Roles that edit a case's intake and record IND confirmations.
INTAKE_ROLES = (COUNSELLOR,)
# Roles whose accounts one administrator cannot make alone: a second administrator (another
# person) approves a new account with one of them, as well as any change of role.
PRIVILEGED_ROLES = (SUPERVISOR, FINANCE, ADMIN, RECORDS_MANAGER, PROCESS_OWNER)
# Roles that see the records screens (retention, destruction lists, holds, access requests).
RECORDS_ROLES = (RECORDS_MANAGER, PROCESS_OWNER)
