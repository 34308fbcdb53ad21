"""The fast dump (:mod:`returnprog.dumping`) answers exactly what marshmallow's
``Schema.dump`` answers, for every output schema of the API and for the odd inputs
marshmallow has rules for (a value of another type, None, a key missing from a dict, an
object instead of a dict, post-dump hooks). The suite also runs with
``dumping.CROSS_CHECK`` on (tests/conftest.py), so every API answer it makes is compared
the same way on real data."""
from __future__ import annotations

import datetime as dt
import importlib
import inspect
from types import SimpleNamespace

import pytest
from marshmallow import Schema, fields, post_dump

from returnprog import dumping

MODULES = ("schemas", "schemas_access", "schemas_case_files", "schemas_corrections",
           "schemas_finance", "schemas_payments", "schemas_queues", "schemas_signing",
           "schemas_webhooks")


def _output_schemas():
    found = {}
    for name in MODULES:
        module = importlib.import_module(f"returnprog.{name}")
        for attr, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, Schema) and value is not Schema
                    and attr.endswith("Out") and value.__module__ == module.__name__):
                found[f"{name}.{attr}"] = value
    return found


OUTPUT_SCHEMAS = _output_schemas()

# Keys the schemas' Function fields read (a payment's URL is made from its case and id).
FUNCTION_KEYS = {"case_reference": "RP-2026-000123", "id": 7}


def _value(field: fields.Field, mode: str, depth: int):
    """A value for ``field``: ``native`` of the field's own type, ``foreign`` of a type
    marshmallow has to convert, ``none``."""
    if mode == "none":
        return None
    foreign = mode == "foreign"
    if isinstance(field, fields.Nested):
        item = _object(field.schema, mode, depth + 1)
        return [item, item] if (field.many or field.schema.many) else item
    if isinstance(field, fields.List):
        return [_value(field.inner, mode, depth), _value(field.inner, mode, depth)]
    if isinstance(field, fields.Boolean):
        return 1 if foreign else True
    if isinstance(field, fields.Integer):
        return "41" if foreign else 41
    if isinstance(field, fields.DateTime):
        return dt.datetime(2026, 12, 4, 21, 5, 7, 123456, tzinfo=dt.timezone.utc)
    if isinstance(field, fields.Date):
        return dt.date(2027, 1, 5)
    if isinstance(field, fields.Dict):
        if field.value_field is not None:
            return {"intake": _value(field.value_field, mode, depth)}
        return {"amount": 12, "why": "bus"}
    if isinstance(field, fields.String):
        return 12345 if foreign else "Тарас Шевченко"
    return "raw" if not foreign else 3.5


def _object(schema: Schema, mode: str, depth: int = 0) -> dict:
    if depth > 4:
        return {}
    data = dict(FUNCTION_KEYS)
    for name, field in schema.dump_fields.items():
        if field._CHECK_ATTRIBUTE:
            data[field.attribute or name] = _value(field, mode, depth)
    if "reference" in schema.dump_fields and mode == "none":
        data["reference"] = "RP-2026-000123"  # CaseOut's hook builds links from it
    return data


def _assert_same_outcome(schema_cls, data):
    """The same answer, or, where marshmallow cannot dump ``data`` either, the same error."""
    try:
        expected = schema_cls().dump(data)
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        with pytest.raises(type(exc)):
            dumping.dump(schema_cls, data)
        return None
    result = dumping.dump(schema_cls, data)
    assert result == expected
    return result


@pytest.mark.parametrize("name", sorted(OUTPUT_SCHEMAS))
@pytest.mark.parametrize("mode", ["native", "foreign", "none"])
def test_every_output_schema_dumps_as_marshmallow_does(name, mode):
    schema_cls = OUTPUT_SCHEMAS[name]
    result = _assert_same_outcome(schema_cls, _object(schema_cls(), mode))
    if mode == "native":
        assert result, f"{name}: marshmallow could not dump a well-formed object"


@pytest.mark.parametrize("name", sorted(OUTPUT_SCHEMAS))
def test_a_missing_key_is_left_out_as_marshmallow_leaves_it(name):
    """Including its quirk: a dict without the key ``items`` gives the dict's method."""
    _assert_same_outcome(OUTPUT_SCHEMAS[name], {**FUNCTION_KEYS, "reference": "RP-2026-000123"})


def test_the_case_list_is_dumped_from_real_looking_rows():
    from returnprog.schemas import CaseListOut

    item = {"reference": "RP-2026-000001", "state": "intake", "version": 3,
            "counsellor": {"id": 5, "name": "Anna de Vries", "email": "a@example.org"},
            "counsellor_name": "Anna de Vries", "principal_name": "Taras Shevchenko",
            "household_size": 3, "departure_deadline": dt.date(2027, 1, 5),
            "destination_oblast": None, "updated_at": dt.datetime(2026, 12, 4, 20, 0)}
    page = {"items": [item] * 3, "page": 1, "per_page": 25, "total": 3, "sort": "reference",
            "order": "desc"}
    out = dumping.dump(CaseListOut, page)
    assert out == CaseListOut().dump(page)
    # The nested user reference shows what it declares, not the address it was given.
    assert out["items"][0]["counsellor"] == {"id": 5, "name": "Anna de Vries"}
    assert out["items"][0]["updated_at"] == "2026-12-04T20:00:00"


class _Inner(Schema):
    n = fields.Integer()
    label = fields.String(data_key="name")


class _Odd(Schema):
    source = fields.String(attribute="deep.path")
    renamed = fields.Integer(attribute="other")
    defaulted = fields.String(dump_default="was missing")
    items = fields.String()  # a dict without the key: marshmallow falls back to getattr
    as_text = fields.Integer(as_string=True)
    computed = fields.Function(lambda obj: "computed")
    inner = fields.Nested(_Inner)
    inners = fields.List(fields.Nested(_Inner))
    many = fields.Nested(_Inner, many=True)
    only = fields.Nested(_Inner, only=("n",))
    pluck = fields.Pluck(_Inner, "n")
    flags = fields.List(fields.Boolean())

    @post_dump
    def _mark(self, data, **kwargs):
        data["marked"] = True
        return data


@pytest.mark.parametrize("obj", [
    {"deep": {"path": "a"}, "other": 3, "as_text": 4, "inner": {"n": "5", "label": 6},
     "inners": [{"n": 1}, {"label": "x"}], "many": [{"n": 2}], "only": {"n": 3, "label": "y"},
     "pluck": {"n": 9}, "flags": [1, 0, True, None]},
    {"inner": None, "inners": None, "many": None, "flags": None},
    {},
    SimpleNamespace(deep=SimpleNamespace(path="b"), other=1, items="listed", as_text=2,
                    inner=SimpleNamespace(n=1, label="l"), inners=[], many=[], only=None,
                    pluck=None, flags=[]),
], ids=["dict", "nones", "empty", "object"])
def test_the_rules_marshmallow_has_are_kept(obj):
    assert dumping.dump(_Odd, obj) == _Odd().dump(obj)


def test_the_cross_check_catches_a_dump_that_differs(monkeypatch):
    """The suite-wide comparison is a real check: a dumper that drifts from marshmallow
    fails the request instead of answering something else."""
    monkeypatch.setattr(dumping, "CROSS_CHECK", True)
    monkeypatch.setattr(dumping, "_schema_dumper", lambda schema: lambda obj: {"n": -1})
    with pytest.raises(AssertionError, match="_Inner"):
        dumping.dump(_Inner, {"n": 1})
