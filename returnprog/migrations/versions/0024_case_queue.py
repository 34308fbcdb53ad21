"""The work-queue cache (issue 11): ``case_queue`` holds, per case, the counsellor queues it
was in when last worked out, and triggers on every table the queues are judged from count
each change in ``change_seq``, so a row worked out before a change never passes for
current, whichever code path (or hand-written SQL) made the change. A new case gets its
row, not yet worked out, from a trigger too; existing cases get theirs here.

Revision ID: 0024
Revises: 0023
"""
import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

UTC = sqlmodel.sql.sqltypes.UTCDateTime
S = sqlmodel.sql.sqltypes.AutoString

# The tables the counsellor's queues are judged from, each with its case column.
WATCHED = {"participant": "case_id", "document": "case_id", "payment": "case_id",
           "signing_request": "case_id", "ind_confirmation": "case_id", "case": "id"}
BUMP = "UPDATE case_queue SET change_seq = change_seq + 1 WHERE case_id = {row}.{column}"


def _sqlite_triggers():
    for table, column in WATCHED.items():
        for event in ("INSERT", "UPDATE", "DELETE"):
            rows = {"INSERT": ("NEW",), "UPDATE": ("NEW", "OLD"), "DELETE": ("OLD",)}[event]
            # OLD too on an update: a row moved to another case changes both.
            body = "; ".join(BUMP.format(row=r, column=column) for r in rows)
            yield (f'CREATE TRIGGER case_queue_{table}_{event.lower()} AFTER {event} ON '
                   f'"{table}" FOR EACH ROW BEGIN {body}; END')
    yield ('CREATE TRIGGER case_queue_new_case AFTER INSERT ON "case" FOR EACH ROW BEGIN '
           'INSERT INTO case_queue (case_id, change_seq, computed_seq, mine, participant, '
           'ind) VALUES (NEW.id, 1, 0, 0, 0, 0); END')


def _postgresql_statements():
    for table, column in WATCHED.items():
        yield f"""
CREATE FUNCTION case_queue_bump_{table}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP IN ('UPDATE', 'DELETE') THEN
    UPDATE case_queue SET change_seq = change_seq + 1 WHERE case_id = OLD.{column};
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') THEN
    UPDATE case_queue SET change_seq = change_seq + 1 WHERE case_id = NEW.{column};
  END IF;
  RETURN NULL;
END $$"""
        yield (f'CREATE TRIGGER case_queue_{table} AFTER INSERT OR UPDATE OR DELETE ON '
               f'"{table}" FOR EACH ROW EXECUTE FUNCTION case_queue_bump_{table}()')
    yield """
CREATE FUNCTION case_queue_new_case() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO case_queue (case_id, change_seq, computed_seq, mine, participant, ind)
  VALUES (NEW.id, 1, 0, false, false, false);
  RETURN NULL;
END $$"""
    # Named to fire before case_queue_case (triggers fire in name order): the row exists
    # by the time a later update of the new case bumps it.
    yield ('CREATE TRIGGER case_queue_a_new_case AFTER INSERT ON "case" FOR EACH ROW '
           'EXECUTE FUNCTION case_queue_new_case()')


def upgrade():
    op.create_table(
        "case_queue",
        sa.Column("case_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("change_seq", sa.Integer(), nullable=False),
        sa.Column("computed_seq", sa.Integer(), nullable=False),
        sa.Column("mine", sa.Boolean(), nullable=False),
        sa.Column("participant", sa.Boolean(), nullable=False),
        sa.Column("ind", sa.Boolean(), nullable=False),
        sa.Column("computed_at", UTC(), nullable=True),
        sa.Column("recheck_at", UTC(), nullable=True),
        sa.Column("policy_key", S(length=16), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["case.id"]),
        sa.PrimaryKeyConstraint("case_id"),
    )
    op.execute("INSERT INTO case_queue (case_id, change_seq, computed_seq, mine, participant, "
               "ind) SELECT id, 1, 0, false, false, false FROM \"case\"")
    statements = (_sqlite_triggers() if op.get_bind().dialect.name == "sqlite"
                  else _postgresql_statements())
    for statement in statements:
        op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "sqlite":
        for table in WATCHED:
            for event in ("insert", "update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS case_queue_{table}_{event}")
        op.execute("DROP TRIGGER IF EXISTS case_queue_new_case")
    else:
        for table in WATCHED:
            op.execute(f'DROP TRIGGER IF EXISTS case_queue_{table} ON "{table}"')
            op.execute(f"DROP FUNCTION IF EXISTS case_queue_bump_{table}()")
        op.execute('DROP TRIGGER IF EXISTS case_queue_a_new_case ON "case"')
        op.execute("DROP FUNCTION IF EXISTS case_queue_new_case()")
    op.drop_table("case_queue")
