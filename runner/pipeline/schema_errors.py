"""The words for a pipeline that fails its schema: each jsonschema error placed where it is, with a hint.

jsonschema reports what failed in schema terms ("is not valid under any of the given schemas"); users need
where and what to change. ``Renderer`` picks, for every failure, the leaf that explains it, places it at the
key or value it is about, and adds the hint it can (the closest allowed key or value, the condition that
made a key required). runner.pipeline.schema imports this only for a file that has errors: a valid file
never pays for compiling it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Final

from runner.errors import Issue, Location
from runner.pipeline.schema import pipeline_schema, pointer, version_issue

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError

    from runner.pipeline.yamlio import Document, KeyPath

_EXPRESSION_REF: Final = {"$ref": "#/$defs/expression"}
_CREDENTIAL_HINT: Final = "is a credential; expressions may never read credentials, so env cannot list it"
_KEY_NAMES: Final = {
    "stages": "stage id",
    "datasets": "dataset id",
    "vars": "variable name",
    "platforms": "target name",
    "targets": "target name",
}
_ID_HINT: Final = "use letters, digits, '_' and '-', starting with a letter or '_', at most 64 characters"
_NAME_HINT: Final = "use 1 to {} letters, digits, '_' or '-'"
_PATTERN_HINTS: Final = {
    r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$": _ID_HINT,
    # a stage id, or a matrix member's (runner.pipeline.matrix)
    r"^[A-Za-z_][A-Za-z0-9_-]{0,63}(@[A-Za-z_][A-Za-z0-9_]{0,63}=[A-Za-z0-9_.-]{1,64}"
    r"(,[A-Za-z_][A-Za-z0-9_]{0,63}=[A-Za-z0-9_.-]{1,64})*)?$": _ID_HINT,
    r"^[a-z0-9][a-z0-9_-]{0,62}$": "use lower-case letters, digits, '_' and '-', "
    "starting with a letter or digit, at most 63 characters",
    r"^\$\{\{[\s\S]*\}\}$": "an expression is the whole value, '${{ ... }}'",
    r"\$\{\{[\s\S]*\}\}": "a condition is a '${{ ... }}' expression or true/false",
    r"^[a-z][a-z0-9_-]{0,31}$": "use lower-case letters, digits, '_' and '-', starting with a letter, at "
    "most 32 characters",
    r"^[A-Za-z_][A-Za-z0-9_]*$": "use letters, digits and '_', not starting with a digit",
    r"^[A-Z_][A-Z0-9_]*$": "environment variable names use upper-case letters, digits and '_'",
    r"^[A-Za-z0-9_-]{1,64}$": _NAME_HINT.format(64),
    r"^[A-Za-z0-9_-]{1,40}$": _NAME_HINT.format(40),
    r"^[a-z0-9][a-z0-9_-]{0,18}[a-z0-9]$": "use 2 to 20 lower-case letters, digits, '_' or '-', "
    "starting and ending with a letter or digit (Qianfan's rule for a URL suffix)",
    r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$": "write it as 'module:function', e.g. 'evals.arith:score'",
    r"^https?://": "give an http:// or https:// URL",
    r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$": "a BOS bucket name has 3 to 63 lower-case letters, digits or '-', "
    "starting and ending with a letter or digit",
    r"\{input\}": "a prompt template must contain {input}, where each prompt goes (Qianfan's rule)",
    r"^bos:/": "give a BOS location, 'bos:/bucket/path'",
}
# Keys of ``deploy.service`` that earlier formats took and Qianfan cannot buy (issue 10): the error names the
# spelling that replaced each one instead of the generic "unknown key".
_GONE_SERVICE_KEYS: Final = {
    "hours": "Qianfan sells services by the month; use `billing: {payment: prepaid, months: 1}` "
    "(or `billing: {payment: postpaid, charge: computing_unit}`)",
    "pool_type": "Qianfan buys compute by resource type; use `resource_type:` (e.g. GPU-1-1) "
    "and optionally `region: bj`",
    "service_type": "every deployed service is a chat service and CreateService takes no type; remove it",
    "endpoint_suffix": "Qianfan calls it urlSuffix; use `url_suffix:` (2 to 20 of a-z, 0-9, '_', '-')",
}
_TYPE_NAMES: Final = {
    "integer": "an integer",
    "number": "a number",
    "string": "a string",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


class Renderer:
    """Turns one jsonschema error (with its context) into located, worded issues."""

    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def render(self, error: ValidationError) -> list[Issue]:
        path: KeyPath = tuple(error.absolute_path)
        validator: Any = error.validator  # None for a ``false`` schema, whatever the stubs say
        if "propertyNames" in error.absolute_schema_path:
            return [self._bad_key_name(error, path)]
        if validator in ("anyOf", "oneOf"):
            return self._alternatives(error, path)
        if validator == "additionalProperties":
            return self._unknown_keys(error, path)
        if validator == "required":
            name = error.message.split("'")[1] if "'" in error.message else error.message
            text = f"'{name}' is required{self._condition(error)}."
            return [self._issue(self.doc.key_location(path), path, text)]
        if validator is None:  # a ``false`` schema: a key that the condition forbids
            return self._forbidden(error, path)
        if validator == "const" and path == ("version",):
            return [version_issue(self.doc, error.instance)]
        return [self._issue(self.doc.location(path), path, self._leaf_text(error))]

    def _issue(self, location: Location, path: KeyPath, text: str) -> Issue:
        return Issue(location, f"{dotted(path)}: {text}")

    def _leaf_text(self, error: ValidationError) -> str:
        validator, value = error.validator, _value(error)
        instance: Any = error.instance
        if validator == "enum":
            shown = ", ".join(str(item) for item in value)
            return _sentence(f"{value_text(instance)} is not one of {shown}{did_you_mean(instance, value)}")
        if validator == "const":
            return f"must be {value_text(value)}, not {value_text(instance)}."
        if validator == "type":
            return f"expected {_expected(value)}, got {_type_name(instance, with_value=True)}."
        if validator == "pattern":
            hint = _PATTERN_HINTS.get(value)
            if hint is None:
                return f"{value_text(instance)} does not match the pattern {value}."
            return f"{value_text(instance)} is not valid: {hint}."
        if validator in ("minItems", "minProperties", "minLength") and value == 1:
            return "must not be empty."
        if validator in ("minLength", "maxLength") and isinstance(instance, str):
            schema: Any = error.schema
            low, high = schema.get("minLength", 0), schema.get("maxLength")
            wanted = f"{low} to {high}" if high is not None else f"at least {low}"
            count = f"{len(instance)} character{'' if len(instance) == 1 else 's'}"
            return f"{value_text(instance)} has {count}; use {wanted}."
        if validator == "maxItems" and isinstance(instance, list):
            return f"has {len(instance)} entries; at most {value} are allowed."
        if validator == "uniqueItems":
            repeated = sorted({str(item) for item in instance if instance.count(item) > 1})
            return f"lists {', '.join(repeated)} more than once."
        if validator == "not" and isinstance(instance, str):
            return f"'{instance}' {_CREDENTIAL_HINT}."
        return error.message.rstrip(".") + "."

    def _bad_key_name(self, error: ValidationError, path: KeyPath) -> Issue:
        name = str(error.instance)
        what = _KEY_NAMES.get(str(path[-1]) if path else "", "key")
        pattern = str(_value(error))
        hint = _PATTERN_HINTS.get(pattern, f"it must match {pattern}")
        text = f"'{name}' is not a valid {what}: {hint}."
        return self._issue(self.doc.key_location((*path, name)), path, text)

    def _unknown_keys(self, error: ValidationError, path: KeyPath) -> list[Issue]:
        schema: Any = error.schema
        allowed = sorted(schema.get("properties", {}))
        instance = error.instance if isinstance(error.instance, dict) else {}
        issues = []
        for key in instance:
            if key in allowed:
                continue
            gone = _GONE_SERVICE_KEYS.get(key) if path and path[-1] == "service" else None
            if gone is not None:
                text = f"`{key}` is gone: {gone}."
                issues.append(self._issue(self.doc.key_location((*path, key)), path, text))
                continue
            hint = did_you_mean(key, allowed) or f"; allowed keys are {', '.join(allowed)}"
            text = _sentence(f"unknown key '{key}'{hint}")
            issues.append(self._issue(self.doc.key_location((*path, key)), path, text))
        return issues

    def _forbidden(self, error: ValidationError, path: KeyPath) -> list[Issue]:
        properties = _schema_at(error.absolute_schema_path)
        instance = _data_at(self.doc.data, path)
        issues = []
        if isinstance(properties, dict) and isinstance(instance, dict):
            for key, sub in properties.items():
                if sub is False and key in instance:
                    text = f"'{key}' is not allowed{self._condition(error)}."
                    issues.append(self._issue(self.doc.key_location((*path, key)), path, text))
        return issues or [self._issue(self.doc.location(path), path, "this value is not allowed here.")]

    def _condition(self, error: ValidationError) -> str:
        """' when strategy is quantization' (if/then) or ' with 'infer'' (dependentSchemas); '' otherwise."""
        schema_path = list(error.absolute_schema_path)
        if "dependentSchemas" in schema_path:
            trigger = schema_path[schema_path.index("dependentSchemas") + 1]
            return f" with '{trigger}'"
        branch = next((word for word in reversed(schema_path) if word in ("then", "else")), None)
        if branch is None:
            return ""
        at = len(schema_path) - 1 - schema_path[::-1].index(branch)
        container = _schema_at(schema_path[:at])
        while isinstance(container, dict) and "if" not in container and "$ref" in container:
            container = pointer(pipeline_schema(), container["$ref"])
        condition = container.get("if", {}) if isinstance(container, dict) else {}
        found = _const_condition(condition)
        if found is None:
            return ""
        name, value = found
        if branch == "else":
            return f" unless {name} is {value}"
        if name == "type":
            return f" for {_article(value)} {value} stage"
        return f" when {name} is {value}"

    def _alternatives(self, error: ValidationError, path: KeyPath) -> list[Issue]:
        branches: list[Any] = list(_value(error))
        if all(isinstance(b, dict) and set(b) == {"required"} for b in branches):
            return [self._one_of_keys(error, path, branches)]
        if not error.context:
            text = "matches more than one of the allowed forms; remove the keys of all but one."
            return [self._issue(self.doc.key_location(path), path, text)]
        instance = error.instance
        grouped: dict[int, list[ValidationError]] = {}
        for sub_error in error.context:
            grouped.setdefault(int(sub_error.relative_schema_path[0]), []).append(sub_error)
        is_expression_attempt = isinstance(instance, str) and "${{" in instance
        candidates = []
        for index, sub_errors in grouped.items():
            if _is_expression_schema(branches[index]) and not is_expression_attempt:
                continue
            if all(_is_mismatch(sub_error) for sub_error in sub_errors):
                continue
            depth = max(len(sub_error.relative_path) for sub_error in sub_errors)
            candidates.append((depth, -index, sub_errors))
        if not candidates:
            wanted = [_describe(branch) for branch in branches]
            text = f"expected {' or '.join(wanted)}, got {_type_name(instance, with_value=True)}."
            return [self._issue(self.doc.location(path), path, text)]
        best = max(candidates, key=lambda candidate: candidate[:2])[2]
        return [issue for sub_error in best for issue in self.render(sub_error)]

    def _one_of_keys(self, error: ValidationError, path: KeyPath, branches: list[Any]) -> Issue:
        forms = [" with ".join(f"'{key}'" for key in branch["required"]) for branch in branches]
        if any(len(branch["required"]) > 1 for branch in branches):
            needs = only = "either " + ", or ".join(forms)
        else:
            choice = "one of " + ", ".join(forms[:-1]) + f" or {forms[-1]}"
            needs, only = f"exactly {choice}", f"only {choice}"
        several = "both" if len(branches) == 2 else "several"
        text = f"needs {needs}." if error.context else f"give {only}, not {several}."
        return self._issue(self.doc.key_location(path), path, text)


def _const_condition(condition: Any, prefix: str = "") -> tuple[str, Any] | None:
    """The first ``name: {const: value}`` an ``if`` tests, nested names dotted (``billing.charge``)."""
    for name, sub in (condition.get("properties", {}) if isinstance(condition, dict) else {}).items():
        if isinstance(sub, dict) and "const" in sub:
            return f"{prefix}{name}", sub["const"]
        nested = _const_condition(sub, f"{prefix}{name}.")
        if nested is not None:
            return nested
    return None


def _is_expression_schema(schema: Any) -> bool:
    return bool(schema == _EXPRESSION_REF or schema == pipeline_schema()["$defs"]["expression"])


def _is_mismatch(error: ValidationError) -> bool:
    """True when a branch failed only because the value is of another kind than the branch takes."""
    if error.relative_path:
        return False
    if error.validator == "type":
        return True
    if error.validator == "enum":
        return not any(type(item) is type(error.instance) for item in _value(error))
    return False


def _value(error: ValidationError) -> Any:
    """The failing keyword's value (typed ``Any | Unset`` by the stubs; always set on a reported error)."""
    return error.validator_value


def _describe(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "a value"
    if _is_expression_schema(schema):
        return "a '${{ ... }}' expression"
    if "enum" in schema:
        return "one of " + ", ".join(str(item) for item in schema["enum"])
    if "type" in schema:
        return _expected(schema["type"])
    return "a value of another form"


def _schema_at(path: Any) -> Any:
    """The sub-schema at a jsonschema ``schema_path``, following the schema's local ``$ref``s."""
    root = pipeline_schema()
    node: Any = root
    for key in path:
        while isinstance(node, dict) and key not in node and "$ref" in node:
            node = pointer(root, node["$ref"])
        node = node[key]
    return node


def _data_at(data: Any, path: KeyPath) -> Any:
    for key in path:
        data = data[key]
    return data


def _sentence(text: str) -> str:
    """End with a period, unless the text ends with a question ("...; did you mean 'x'?")."""
    return text if text.endswith("?") else text + "."


def _article(word: Any) -> str:
    return "an" if str(word)[:1].lower() in "aeiou" else "a"


def dotted(path: KeyPath) -> str:
    """``stages.serve.service.replicas``; list items as ``evaluators[0]``; the root as ``top level``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else (f".{key}" if text else str(key))
    return text or "top level"


def value_text(value: Any) -> str:
    """A value as a user wrote it: strings quoted, the rest as YAML spells them."""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, default=str)[:60]


def did_you_mean(word: Any, choices: Any) -> str:
    """'; did you mean 'weight'?' for the closest choice, compared without case; '' when none is close."""
    if not isinstance(word, str):
        return ""
    names = [str(choice) for choice in choices]
    by_lower = {name.lower(): name for name in names}
    import difflib  # only for a file with a mistake: a valid file does not pay for it

    close = difflib.get_close_matches(word.lower(), list(by_lower), n=1, cutoff=0.6)
    return f"; did you mean '{by_lower[close[0]]}'?" if close else ""


def _expected(json_type: Any) -> str:
    types = json_type if isinstance(json_type, list) else [json_type]
    return " or ".join(_TYPE_NAMES.get(str(name), str(name)) for name in types)


def _type_name(value: Any, *, with_value: bool = False) -> str:
    """'the string 'two'', 'a list', ...: what the user wrote, in YAML words."""
    if isinstance(value, bool):
        name = "the boolean"
    elif isinstance(value, int):
        name = "the integer"
    elif isinstance(value, float):
        name = "the number"
    elif isinstance(value, str):
        name = "the string"
    elif value is None:
        return "null"
    else:
        return "a list" if isinstance(value, list) else "a mapping"
    return f"{name} {value_text(value)}" if with_value else name
