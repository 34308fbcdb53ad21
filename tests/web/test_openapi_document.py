"""The served OpenAPI 3.1 document says what the service does (issue 14): every API route
is an operation named after its view, protected ones require the bearer token, bodies
that are needed are required, the shared error answers use the one error schema, the
validators' rules are in the schemas and the examples are accepted as they stand."""
from __future__ import annotations

import json
import re

from openapi_schema_validator import OAS31Validator

from returnprog import identifiers, schemas
from returnprog.web.api.openapi import (
    PUBLIC_OPERATIONS,
    action_examples,
    intake_example,
)

API = "/api/v1"
TAGS = {"cases", "actions", "signing", "documents", "verification", "payments", "exports", "batches", "statements",
        "events", "queues", "tokens", "webhooks", "notes", "records"}
METHODS = ("get", "put", "post", "delete", "patch")


def _document(client) -> dict:
    resp = client.get(f"{API}/openapi.json")
    assert resp.status_code == 200
    return resp.get_json()


def _operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield path, method, item[method]


def _routes(app):
    """(METHOD, OpenAPI path) → view function name, for every API route."""
    out = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API):
            continue
        path = re.sub(r"<(?:[a-z_]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            out[(method.lower(), path)] = app.view_functions[rule.endpoint].__name__
    return out


def _resolve(doc, node):
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_every_route_is_one_operation_named_after_its_view(app, client):
    doc = _document(client)
    routes = _routes(app)
    ids = []
    for path, method, op in _operations(doc):
        ids.append(op["operationId"])
        assert op.get("tags") and set(op["tags"]) <= TAGS, (path, method)
        if "/actions/" in path:
            # One documented path per action, served by the one generic route.
            assert routes[(method, "/api/v1/cases/{reference}/actions/{action}")] == "perform_action"
            assert op["operationId"] == "action_" + path.rsplit("/", 1)[1]
        else:
            assert routes[(method, path)] == op["operationId"], (path, method)
    assert len(ids) == len(set(ids))
    documented = {(m, p) for p, m, _ in _operations(doc)}
    missing = {key for key in routes if key not in documented
               and key[1] != "/api/v1/cases/{reference}/actions/{action}"}
    assert not missing


def test_protected_operations_need_the_token_and_list_the_shared_errors(client):
    doc = _document(client)
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, method, op in _operations(doc):
        where = (path, method)
        if op["operationId"] in PUBLIC_OPERATIONS:
            assert op["security"] == [], where
            assert "401" not in op["responses"]
            continue
        assert op["security"] == [{"bearer": []}], where
        expected = {"401", "403", "500"} | ({"404"} if "{" in path else set()) \
            | ({"409"} if method != "get" else set())
        body = op.get("requestBody")
        if body is not None:
            expected |= {"413", "415", "422"}
            if "application/json" in body["content"]:
                expected.add("400")
            media = next(iter(body["content"].values()))
            if media.get("schema", {}).get("maxProperties") != 0:  # else: no body, or {}
                assert body["required"] is True, where
        assert expected <= set(op["responses"]), (where, expected - set(op["responses"]))
        for status, answer in op["responses"].items():
            if status >= "400":
                assert answer["content"]["application/json"]["schema"] == error, (where, status)


def test_the_error_schema_is_the_one_shape_the_service_answers(client, api_staff):
    doc = _document(client)
    validator = OAS31Validator({"$ref": "#/components/schemas/ErrorOut",
                                "components": doc["components"]})
    answers = [client.post(f"{API}/cases", headers=api_staff.headers["counsellor"],
                           json={"principal": {"v_number": "12", "household": []}}),
               client.get(f"{API}/cases/VRP-0000-000000", headers=api_staff.headers["counsellor"]),
               client.get(f"{API}/cases")]
    assert [a.status_code for a in answers] == [422, 404, 401]
    for answer in answers:
        validator.validate(answer.get_json())
    fields = {d.get("field") for d in answers[0].get_json()["error"]["details"]}
    assert {"principal.v_number", "principal.household"} <= fields
    body = _resolve(doc, doc["components"]["schemas"]["ErrorOut"]["properties"]["error"])
    assert set(body["required"]) == {"code", "message", "details"}


def test_nullable_is_said_the_3_1_way(client):
    doc = _document(client)
    text = json.dumps(doc)
    assert '"nullable"' not in text
    oblast = doc["components"]["schemas"]["Intake"]["properties"]["destination_oblast"]
    assert oblast["type"] == ["string", "null"]
    assert None in oblast["enum"] and set(oblast["enum"]) - {None} == set(identifiers.OBLASTS)
    token_stamp = doc["paths"]["/api/v1/tokens"]["get"]["responses"]["200"]["content"][
        "application/json"]["schema"]["properties"]["items"]["items"]["properties"]["revoked_at"]
    assert token_stamp["type"] == ["string", "null"]


def test_the_identifier_patterns_agree_with_the_validators(client):
    doc = _document(client)
    person = doc["components"]["schemas"]["Participant"]["properties"]
    v_pattern, bsn_pattern = person["v_number"]["pattern"], person["bsn"]["pattern"]
    for typed in ("1234567890", "12 3456.7890", " 1234567890 ", "123456789", "12345678901",
                  "12345abcde", "١٢٣٤٥٦٧٨٩٠"):
        accepted = identifiers.is_valid_v_number(identifiers.normalise_v_number(typed.strip()))
        assert bool(re.match(v_pattern, typed)) == accepted, typed
    assert re.match(bsn_pattern, "111222333") and re.match(bsn_pattern, "")
    assert not re.match(bsn_pattern, "11122233") and not re.match(bsn_pattern, "1112223334")
    name = person["given_names_latin"]["pattern"]
    assert re.match(name, "Olena") and re.match(name, " Olena\t")
    assert not re.match(name, "Ole\x07na") and not re.match(name, "   ")
    assert person["date_of_birth"]["format"] == "date"
    assert person["email"]["format"] == "email"
    action = doc["components"]["schemas"]["Action_agree_departure"]["properties"]
    assert "future" in action["departure_deadline"]["description"]


def test_the_examples_are_valid_under_the_document_and_the_service(client):
    doc = _document(client)

    def check(schema_ref, example, loader):
        OAS31Validator({**schema_ref, "components": doc["components"]}).validate(example)
        loader().load(example)

    intake = doc["paths"]["/api/v1/cases"]["post"]["requestBody"]["content"]["application/json"]
    assert intake["example"] == intake_example()
    check(intake["schema"], intake["example"], schemas.IntakeSchema)
    for action, schema in schemas.ACTION_SCHEMAS.items():
        media = doc["paths"][f"/api/v1/cases/{{reference}}/actions/{action}"]["post"][
            "requestBody"]["content"]["application/json"]
        assert media["example"] == action_examples().get(action, {})
        check(media["schema"], media["example"], schema)
