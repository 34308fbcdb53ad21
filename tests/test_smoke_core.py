import datetime as dt
from tests.conftest import drive_to

def test_drive_to_departed(ctx_for, staff, session):
    case = drive_to(ctx_for, staff, session, "departed")
    assert case.state == "departed"
