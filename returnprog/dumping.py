"""Dumping with an output schema at the cost of building the dict by hand.

Marshmallow's ``Schema.dump`` walks four layers of calls per field (``serialize``,
``get_value``, ``get_attribute``, the accessor) before the field's own ``_serialize``:
a list page of 25 cases is 300 fields and cost 0.35 ms of a 2.2 ms request
(bench/README.md). :func:`dump` reads a schema's declared fields once and keeps a
function that does per field only what that field needs: a value already of the field's
JSON type is taken as it is, a nested schema or list goes straight to its own dumper, and
every other field is handed to the field's own ``_serialize``. Whatever it does not know
(a field without attribute such as ``fields.Function``, a value missing from the object,
a pre-dump hook, a custom accessor) goes the whole marshmallow way, so the answer is the
same as ``Schema.dump``'s: ``tests/unit/test_dumping.py`` holds every output schema to
that, and under the test suite (:data:`CROSS_CHECK`, set by ``tests/conftest.py``) every
API answer is dumped both ways and compared. The schemas stay the contract; this only makes them cheaper to
apply.

Flask-free. Relies on marshmallow's documented field protocol (``_serialize``) and its
``_invoke_dump_processors`` for post-dump hooks; marshmallow is pinned in
requirements.txt, and the tests catch an upgrade that changes either.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, missing
from marshmallow.decorators import POST_DUMP, PRE_DUMP
from marshmallow.utils import get_value

# Fields whose _serialize returns a value of this exact type unchanged.
_KEPT_AS_IS = {fields.String: str, fields.Email: str, fields.Boolean: bool}


def _value_converter(field: fields.Field) -> Callable[[Any, str, Any], Any]:
    """``convert(value, attr, obj)``: what ``field._serialize`` returns for a present
    value, with the common cases done without the call."""
    kind = type(field)
    if kind is fields.Nested:
        nested = field.schema
        dump = _schema_dumper(nested)
        if nested.many or field.many:
            return lambda value, attr, obj: (None if value is None
                                             else [dump(each) for each in value])
        return lambda value, attr, obj: None if value is None else dump(value)
    if kind is fields.List:
        inner = _value_converter(field.inner)
        return lambda value, attr, obj: (None if value is None
                                         else [inner(each, attr, obj) for each in value])
    serialize = field._serialize
    if kind is fields.Integer and not field.as_string:
        return lambda value, attr, obj: (value if type(value) is int
                                         else serialize(value, attr, obj))
    native = _KEPT_AS_IS.get(kind)
    if native is not None:
        return lambda value, attr, obj: (value if type(value) is native
                                         else serialize(value, attr, obj))
    return serialize


@functools.cache
def _schema_dumper(schema: Schema) -> Callable[[Any], dict]:
    """The dump of one object (not a list) by ``schema``, an instance kept for the life of
    the process (schemas are cached by class in the callers)."""
    hooks = schema._hooks
    if schema.many or hooks[PRE_DUMP] or type(schema).get_attribute is not Schema.get_attribute:
        return lambda obj: schema.dump(obj, many=False)
    plan = []
    for name, field in schema.dump_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute if field.attribute is not None else name
        # A path ("a.b") or a field that reads no attribute (fields.Function): always
        # marshmallow's own way; a value missing from the object also goes that way, below
        # (a dump_default, or the key left out).
        direct = field._CHECK_ATTRIBUTE and "." not in attr
        plan.append((key, name, attr, field, _value_converter(field) if direct else None))

    def dump_one(obj) -> dict:
        out = {}
        is_dict = type(obj) is dict
        for key, name, attr, field, convert in plan:
            if convert is None:
                value = field.serialize(name, obj, accessor=schema.get_attribute)
            else:
                value = obj.get(attr, missing) if is_dict else missing
                if value is missing:
                    value = get_value(obj, attr, missing)
                value = (field.serialize(name, obj, accessor=schema.get_attribute)
                         if value is missing else convert(value, name, obj))
            if value is not missing:
                out[key] = value
        return out

    if not hooks[POST_DUMP]:
        return dump_one

    def dump_with_hooks(obj) -> dict:
        return schema._invoke_dump_processors(POST_DUMP, dump_one(obj), many=False,
                                              original_data=obj)
    return dump_with_hooks


@functools.cache
def shared_schema(schema_cls: type[Schema]) -> Schema:
    """The one instance of ``schema_cls`` every request uses: building a schema binds each
    of its fields (a case's nested ones included) again, a quarter of a millisecond per
    case read. Loading and dumping keep no state in the instance, so sharing it between
    requests and threads is safe."""
    return schema_cls()


# Set by the test suite: every dump is also made by marshmallow and the two compared.
CROSS_CHECK = False


def dump(schema_cls: type[Schema], obj: Any) -> Any:
    """``schema_cls().dump(obj)``: the same answer, built without marshmallow's per-field
    call layers."""
    schema = shared_schema(schema_cls)
    result = _schema_dumper(schema)(obj)
    if CROSS_CHECK:
        expected = schema.dump(obj)
        if result != expected:
            raise AssertionError(f"{schema_cls.__name__}: dumping gave {result!r}, "
                                 f"marshmallow {expected!r}")
    return result
