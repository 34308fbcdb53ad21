"""The staff password policy (NIST SP 800-63B): length only as the composition rule,
a blocklist of common passwords, context words, no trimming — and the four-eyes rules
between people that payments are checked by (pure parts, no database)."""
from __future__ import annotations

import pytest
from marshmallow import ValidationError

from returnprog import passwords, payments, schemas
from returnprog.workflow import ACTIONS, CaseFacts, PaymentFacts, State

EMAIL, NAME = "anna.devries@dtenv.example", "Anna de Vries"


def codes(password, email=EMAIL, name=NAME):
    return [m.code for m in passwords.problems(password, email=email, name=name)]


def test_the_shipped_blocklist_holds_the_twenty_thousand_common_passwords():
    words = passwords.blocklist()
    assert len(words) > 19_000  # 20,000 entries, a few the same once lower-cased
    assert {"password1234", "qwerty123456", "welkom01"} <= words


@pytest.mark.parametrize("password", [
    "password1234", "Password1234", "PASSWORD1234!", "qwertyuiop123", "iloveyou2024!!",
    "Welkom2024!!!", "!!sunshine2026"])
def test_common_passwords_and_common_words_dressed_up_with_digits_are_refused(password):
    assert codes(password) == ["validate.password_common"]


def test_password1234_is_refused_as_common():
    assert codes("password1234") == ["validate.password_common"]


@pytest.mark.parametrize("password", [
    EMAIL, EMAIL.upper(), "my " + EMAIL + " pass", "anna.devries-secret", "returnprog-2026!",
    "I work at DTenV happily", "devries devries devries", "annadevries!!77"])
def test_the_users_own_address_name_and_the_service_names_are_refused(password):
    assert "validate.password_context" in codes(password)


@pytest.mark.parametrize("password", ["aaaaaaaaaaaa", "abababababab", "123456789012",
                                      "abcdefghijklmn", "9876543210987"])
def test_repetitions_and_plain_sequences_are_refused(password):
    assert codes(password) in (["validate.password_pattern"], ["validate.password_common"])


@pytest.mark.parametrize("password", [
    "correct horse battery",          # lower case only: no composition rules
    "tulpen langs de dijk",           # spaces inside count
    "Київ навесні пахне",             # any Unicode
    "mijn fiets staat altijd bij het station in Zwolle, naast de bakker op de hoek",
])
def test_long_passphrases_without_any_composition_rule_are_accepted(password):
    assert codes(password) == []


def test_length_is_12_to_200_characters_as_typed():
    assert codes("elevenchars") == ["validate.password_length"]
    assert codes("tulpen dijk!") == []                         # exactly 12
    assert codes("tulpen dijk!"[:11] + " ") == []              # a trailing space counts
    long = ("vier woorden op een rij " * 9)[:200]
    assert len(long) == 200 and codes(long) == []
    assert codes(long + "x") == ["validate.password_length"]
    assert passwords.MIN_LENGTH == 12 and passwords.MAX_LENGTH >= 64


def test_context_words_shorter_than_four_letters_do_not_refuse_passphrases():
    # "de" is part of the name, but refusing every password with "de" in it helps nobody.
    assert codes("onder de brug door", email="an@dtenv.example", name="An de Bo") == []


def test_the_schema_takes_passwords_as_typed_and_trims_the_other_fields():
    data = schemas.UserCreateSchema().load({
        "email": "  kim@dtenv.example ", "role": "counsellor", "person": " P-12 ",
        "password": "  correct horse battery  "})
    assert data["password"] == "  correct horse battery  "
    assert data["email"] == "kim@dtenv.example" and data["person"] == "P-12"
    assert schemas.PasswordSchema().load({"password": " tulpen langs de dijk"})["password"] \
        == " tulpen langs de dijk"


def test_the_schema_refuses_weak_passwords_at_the_password_field_by_code():
    for password, code in (("password1234", "validate.password_common"),
                           ("kim@dtenv.example", "validate.password_context"),
                           ("short", "validate.password_length")):
        with pytest.raises(ValidationError) as err:
            schemas.UserCreateSchema().load({"email": "kim@dtenv.example", "role": "counsellor",
                                             "password": password})
        assert [m.code for m in err.value.messages["password"]] == [code]


def test_a_personnel_number_is_letters_digits_and_hyphens():
    for bad in ("", "@anna@dtenv.example", "P 12", "x" * 21, "-12"):
        with pytest.raises(ValidationError) as err:
            schemas.UserCreateSchema().load({"email": "kim@dtenv.example", "role": "counsellor",
                                             "password": "correct horse battery",
                                             "person": bad})
        assert [m.code for m in err.value.messages["person"]] == ["validate.person_number"]


# --- four eyes between people (pure rules) ---------------------------------------------------

def test_a_supervisor_may_not_decide_on_a_proposal_of_his_own_person():
    assert payments.decision_problem("supervisor", 8, 7, actor_person="P-1",
                                     proposer_person="P-1").code == "payment.own_proposal:person"
    assert payments.decision_problem("supervisor", 8, 7, actor_person="P-2",
                                     proposer_person="P-1") is None
    assert payments.decision_problem("supervisor", 7, 7).code == "payment.own_proposal"


def test_the_payer_is_neither_proposer_nor_approver_as_a_person():
    assert payments.disbursement_problem(9, 7, 8, actor_person="P-1",
                                         other_persons=("P-1", "P-2")).code \
        == "payment.disburse_four_eyes:person"
    assert payments.disbursement_problem(9, 7, 8, actor_person="P-3",
                                         other_persons=("P-1", "P-2")) is None


def test_pay_support_refuses_a_payment_proposed_and_approved_by_one_person():
    import datetime as dt

    from returnprog.policy import DEFAULT_POLICY

    def refusals(pay):
        facts = CaseFacts(state=State.DEPARTURE_AGREED, today=dt.date(2026, 6, 1), payment=pay)
        return [r.message_code for r in ACTIONS["pay_support"].precondition(
            facts, {}, DEFAULT_POLICY)]

    same = PaymentFacts("approved", 10, 11, 375_000, 375_000, proposer_person="P-1",
                        approver_person="P-1")
    other = PaymentFacts("approved", 10, 11, 375_000, 375_000, proposer_person="P-1",
                         approver_person="P-2")
    assert refusals(same) == ["payment_four_eyes:person"]
    assert refusals(other) == []
