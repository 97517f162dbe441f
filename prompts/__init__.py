"""duplexloom.prompts: the tool catalog, label phrases and system prompts (data files) and their loader.

Data (package data, loaded with ``importlib.resources`` and cached):

* ``catalog/tools.json`` — the 50 cabin and smart-home functions of SPEC section 9, each a
  :class:`ToolSpec` with zh + en descriptions and a JSON Schema for its ``arguments`` object;
* ``labels.json`` — paraphrase phrases per control label and language (SPEC section 8);
* ``system_prompts.json`` — one system prompt per task family and language (SPEC section 11);
  ``{}`` is replaced by the assistant speaker's name.

:func:`validate_arguments` checks arguments with a small JSON Schema subset (``type`` object /
string / integer / number / boolean / array, ``properties``, ``required``, ``additionalProperties:
false``, ``enum``, ``minimum``/``maximum``, ``minLength``/``maxLength``, ``pattern``, ``items``,
``minItems``/``maxItems``) — the catalog uses nothing else, and a test enforces that.

Reject codes: ``unknown_tool``, ``invalid_arguments``.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

from duplexloom.schemas.action import ToolSpec
from duplexloom.schemas.family import FAMILIES as FAMILIES  # the contract's; system prompts key on it
from duplexloom.schemas.reject import RejectError

LANGS: tuple[str, ...] = ("zh", "en")
SCHEMA_KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "items",
        "minItems",
        "maxItems",
        "description",
    }
)


def _read(name: str) -> bytes:
    return resources.files(__name__).joinpath(name).read_bytes()


@lru_cache(maxsize=1)
def load_catalog() -> dict[str, ToolSpec]:
    """Function name -> :class:`ToolSpec`, in catalog order."""
    data = json.loads(_read("catalog/tools.json"))
    return {t["name"]: ToolSpec.model_validate(t) for t in data["tools"]}


@lru_cache(maxsize=1)
def _labels() -> dict[str, dict[str, list[str]]]:
    data = json.loads(_read("labels.json"))
    return {lang: data[lang] for lang in LANGS}


@lru_cache(maxsize=1)
def _system_prompts() -> dict[str, dict[str, str]]:
    data = json.loads(_read("system_prompts.json"))
    return {lang: data[lang] for lang in LANGS}


def prompt_hashes() -> dict[str, str]:
    """sha256 of every prompts data file, for the run summary and sample provenance."""
    return {
        name: hashlib.sha256(_read(name)).hexdigest()
        for name in ("catalog/tools.json", "labels.json", "system_prompts.json")
    }


def label_phrases(label: str, lang: str) -> list[str]:
    """Paraphrases of control label ``label`` (response / interrupt / backchannel) in ``lang``."""
    try:
        return list(_labels()[lang][label])
    except KeyError:
        raise KeyError(f"no label phrases for label {label!r} in language {lang!r}") from None


def system_prompt(family: str, lang: str, assistant_name: str) -> str:
    """The system prompt of ``family`` in ``lang`` with ``{}`` replaced by ``assistant_name``."""
    try:
        template = _system_prompts()[lang][family]
    except KeyError:
        raise KeyError(f"no system prompt for family {family!r} in language {lang!r}") from None
    # str.replace, not str.format: a name with braces must not be parsed as a format field.
    return template.replace("{}", assistant_name)


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
}


def schema_errors(value: Any, schema: dict[str, Any], path: str = "arguments") -> list[str]:
    """Every way ``value`` fails ``schema`` (the subset above), as ``path: reason`` strings."""
    errors: list[str] = []
    typ = schema.get("type")
    if typ is not None:
        ok = isinstance(value, _JSON_TYPES[typ])
        # bool is an int in Python but not in JSON.
        if ok and typ in ("integer", "number") and isinstance(value, bool):
            ok = False
        if not ok:
            return [f"{path}: expected {typ}, got {type(value).__name__} {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
        if "pattern" in schema and re.search(schema["pattern"], value) is None:
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{path}.{key}: required argument is missing")
        for key, sub in value.items():
            if key in props:
                errors.extend(schema_errors(sub, props[key], f"{path}.{key}"))
            elif schema.get("additionalProperties", True) is False:
                errors.append(f"{path}.{key}: unknown argument (allowed: {sorted(props)})")
    if isinstance(value, list | tuple):
        if "minItems" in schema and len(value) < schema["minItems"]:
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                errors.extend(schema_errors(item, schema["items"], f"{path}[{i}]"))
    return errors


def validate_arguments(name: str, args: Any) -> None:
    """Raise ``RejectError("unknown_tool")`` for a name not in the catalog and
    ``RejectError("invalid_arguments")`` when ``args`` fails the function's schema."""
    catalog = load_catalog()
    spec = catalog.get(name)
    if spec is None:
        raise RejectError("unknown_tool", f"{name!r} is not a catalog function")
    errors = schema_errors({} if args is None else args, spec.parameters)
    if errors:
        raise RejectError("invalid_arguments", f"{name}: " + "; ".join(errors))
