"""API Gateway's REST mapping-template runtime, on the airspeed-ext Velocity engine.

The local stack and the tests render the mapping templates of the generated OpenAPI
document with this module, so what they exercise is what API Gateway runs:

    render_request_template(template, body=..., path_params=..., query=..., headers=..., context=...) -> str
    render_response_template(template, body=..., context=...) -> RenderedResponse

Sources. AWS documents the variables and functions, not the engine's edge cases:
  [vars]      https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
  [overrides] https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-override-request-response-parameters.html
  [examples]  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-variable-examples.html
Where they are silent this module follows, and says so beside the code:
  [aws-rec]   templates rendered by real API Gateway and recorded by LocalStack: the airspeed-ext
              snapshot suite (github.com/localstack/airspeed, tests/test_templating.snapshot.json)
              and LocalStack's @markers.aws.validated tests (github.com/localstack/localstack,
              tests/aws/services/apigateway/). Evidence of AWS behaviour, not AWS documentation.
  [ls]        LocalStack's implementation (localstack-core/.../next_gen/execute_api/template_mapping.py)
              where its maintainers report checking the AWS console but no recorded test exists.
  [vtl17]     Apache Velocity 1.7, the engine API Gateway's behaviour matches ($velocityCount and
              $velocityHasNext work there [aws-rec]; Velocity 2 removed them):
              https://velocity.apache.org/engine/1.7/user-guide.html and its source.
  [java]      The Java classes the template's objects are: java.lang.String, java.util.regex.Pattern,
              java.net.URLEncoder/URLDecoder, java.util.Base64, commons-lang StringEscapeUtils.

The one rule that most changes how templates must be written [aws-rec]: API Gateway turns every
null or undefined reference into the empty string "", and (as in Velocity 1.7) "" is true. So
`#if($x)` is true for a missing $x, `$x == ""` and `$x == $null` are both true, and `!$x` is false.
Test presence with `#if("$!x" != "")`, never with `#if($x)`.

The engine is a private copy of airspeed's `airspeed.operators`, loaded under another module name
and patched in `_build_engine()` -- the one place this module changes airspeed. The `airspeed`
package other code imports is untouched.

Not emulated: HTTP APIs' parameter mapping (REST templates only), and the Velocity features
API Gateway's documentation does not list, where AWS's behaviour is unrecorded.

One module on purpose: it is one engine adapter ($input, $util and $context as API Gateway
defines them over airspeed), each behaviour beside the recording or page it follows.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import decimal
import functools
import importlib.util
import json
import math
import re
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

__all__ = [
    "MappingTemplateError",
    "MappingTemplateRenderError",
    "MappingTemplateSyntaxError",
    "RenderedResponse",
    "render_request_template",
    "render_response_template",
]


class MappingTemplateError(Exception):
    """A mapping template API Gateway could not render: the request would fail with a 5XX."""


class MappingTemplateSyntaxError(MappingTemplateError):
    """The template does not parse; the message names the line and column."""


class MappingTemplateRenderError(MappingTemplateError):
    """The template parsed but failed while rendering; the message names the expression."""


@dataclasses.dataclass(frozen=True)
class RenderedResponse:
    """A rendered integration-response template and the overrides it set [overrides]."""

    body: str
    status_override: int | None
    header_overrides: dict[str, str]


def render_request_template(
    template: str,
    *,
    body: str,
    path_params: Mapping[str, str],
    query: Mapping[str, str],
    headers: Mapping[str, str],
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str] | None = None,
) -> str:
    """Render an integration-request template: the request body API Gateway sends the integration.

    `context` is the $context map (requestId, authorizer: {...}, ...). `headers` are matched by
    $input.params exactly as given (how API Gateway treats header-name case there is not
    documented). $context.requestOverride is not supported: setting it raises
    MappingTemplateRenderError.
    """
    namespace = _namespace(body, path_params, query, headers, context, stage_variables, response=False)
    return _render(template, namespace)


def render_response_template(
    template: str,
    *,
    body: str,
    context: Mapping[str, Any],
    path_params: Mapping[str, str] | None = None,
    query: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    stage_variables: Mapping[str, str] | None = None,
) -> RenderedResponse:
    """Render an integration-response template over the integration's response `body`.

    The parameters are the method request's ($input.params() in a response template).
    $context.responseOverride.status and .header.<name> come back in the RenderedResponse.
    """
    namespace = _namespace(body, path_params, query, headers, context, stage_variables, response=True)
    override: _ResponseOverride = namespace["context"]["responseOverride"]
    text = _render(template, namespace)
    return RenderedResponse(text, override.status(), override.headers())


# ---------------------------------------------------------------------------------------------
# Java values: how the template's objects print, compare and are tested
# ---------------------------------------------------------------------------------------------


class _JsonArray(list):
    """A JSON array read from a payload. It prints as compact JSON, not as Java's "[a, b]":
    `$input.path('$')` of [{"foo":"bar"}] renders [{"foo":"bar"}], while a JSON object renders as
    a Java map, {foo=bar} [aws-rec: localstack test_input_path_template_formatting]. That is
    Jayway JsonPath's json-smart provider (arrays are JSONArray, objects LinkedHashMap)."""


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return _JsonArray(_from_json(item) for item in value)
    return value


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str) -> Any:
    return json.loads(text, parse_constant=_reject_constant)


def _java_double(value: float) -> str:
    """Double.toString [java]: 1.0, 0.001, 1.0E7, 1.0E-4, NaN, Infinity."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0 or 1e-3 <= abs(value) < 1e7:
        return repr(value)  # Python's shortest repr is plain decimal in this range, like Java's
    sign, digits, exponent = decimal.Decimal(repr(value)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{text[0]}.{text[1:] or '0'}E{power}"


def _java_string(value: Any) -> str:
    """String.valueOf(value) for the objects a template holds: what `$value` prints [java]."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _java_double(value)
    if isinstance(value, _JsonArray):
        return _json_text(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_string(k)}={_java_string(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple, range)):
        return "[" + ", ".join(_java_string(item) for item in value) + "]"
    return str(value)


def _truthy(value: Any) -> bool:
    """#if: null and false are false, anything else is true, "", 0 and empty collections included
    [vtl17: ASTReference.evaluate]. (API Gateway has already turned null references into "", so
    an undefined $x is true [aws-rec].)"""
    return value is not None and value is not False


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _vtl_equals(left: Any, right: Any) -> bool:
    """== in Velocity 1.7 (ASTEQNode): numbers by value; objects of one class by equals(); else
    by toString(), so 1 == "1" and true == "true" [vtl17]; null equals only null."""
    if left is None or right is None:
        return left is None and right is None
    if _is_number(left) and _is_number(right):
        return left == right
    for family in (str, bool, dict, (list, tuple, range)):
        if isinstance(left, family) and isinstance(right, family):
            return left == right
    return _java_string(left) == _java_string(right)


def _compare(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    # Velocity 1.7 orders numbers only; any other operand makes the comparison false [vtl17].
    return lambda left, right: _is_number(left) and _is_number(right) and test(left, right)


def _add(left: Any, right: Any) -> Any:
    # A String on either side concatenates (ASTAddNode.handleSpecial) [vtl17].
    if isinstance(left, str) or isinstance(right, str):
        return _java_string(left) + _java_string(right)
    return left + right if _is_number(left) and _is_number(right) else None


def _arithmetic(operation: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    # Non-numbers, and division by zero, give null in Velocity 1.7 (MathUtils) [vtl17].
    def apply(left: Any, right: Any) -> Any:
        if not (_is_number(left) and _is_number(right)):
            return None
        return operation(left, right)

    return apply


def _divide(left: Any, right: Any) -> Any:
    if right == 0:
        return None
    if isinstance(left, int) and isinstance(right, int):
        quotient = abs(left) // abs(right)  # Java integer division truncates toward zero
        return quotient if (left >= 0) == (right > 0) else -quotient
    return left / right


def _modulo(left: Any, right: Any) -> Any:
    if right == 0:
        return None
    if isinstance(left, int) and isinstance(right, int):
        return left - right * _divide(left, right)  # the sign follows the dividend, as in Java
    return math.fmod(left, right)


_BINARY_PRECEDENCE = {
    "||": 1,
    "or": 1,
    "&&": 2,
    "and": 2,
    "==": 3,
    "eq": 3,
    "!=": 3,
    "ne": 3,
    "<": 4,
    "lt": 4,
    "<=": 4,
    "le": 4,
    ">": 4,
    "gt": 4,
    ">=": 4,
    "ge": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}
_BINARY = {
    "==": _vtl_equals,
    "eq": _vtl_equals,
    "!=": lambda left, right: not _vtl_equals(left, right),
    "ne": lambda left, right: not _vtl_equals(left, right),
    "<": _compare(lambda left, right: left < right),
    "lt": _compare(lambda left, right: left < right),
    "<=": _compare(lambda left, right: left <= right),
    "le": _compare(lambda left, right: left <= right),
    ">": _compare(lambda left, right: left > right),
    "gt": _compare(lambda left, right: left > right),
    ">=": _compare(lambda left, right: left >= right),
    "ge": _compare(lambda left, right: left >= right),
    "+": _add,
    "-": _arithmetic(lambda left, right: left - right),
    "*": _arithmetic(lambda left, right: left * right),
    "/": _arithmetic(_divide),
    "%": _arithmetic(_modulo),
}


# ---------------------------------------------------------------------------------------------
# java.util.regex, as String.replaceAll/replaceFirst/matches/split use it
# ---------------------------------------------------------------------------------------------

# Java's "." stops at every line terminator, not only "\n" (java.util.regex.Pattern javadoc) [java].
_JAVA_DOT = "[^\n\r\x85\u2028\u2029]"
_JAVA_INLINE_FLAGS = re.compile(r"\(\?([a-zA-Z-]*)([:)])")
_UNSUPPORTED_ESCAPES = {
    "p": "\\p{...} character properties",
    "P": "\\P{...} character properties",
    "h": "\\h",
    "H": "\\H",
    "v": "\\v (vertical whitespace in Java, a VT character in Python)",
    "V": "\\V",
    "R": "\\R",
    "X": "\\X",
    "G": "\\G",
    "N": "\\N",
}


def _unsupported_regex(regex: str, what: str) -> MappingTemplateRenderError:
    return MappingTemplateRenderError(
        f"Java regex {regex!r} uses {what}, which local/apigateway/vtl.py does not translate to Python"
    )


@functools.lru_cache(maxsize=256)
def _java_pattern(regex: str) -> re.Pattern[str]:
    """Compile a java.util.regex pattern as Python `re`, with Java's meaning [java]:

    \\w \\d \\s and case-insensitivity are ASCII-only (re.ASCII); "." excludes every Java line
    terminator; \\Q...\\E, (?<name>...), \\k<name>, \\z, \\Z are rewritten. Constructs Python
    cannot express the same way raise MappingTemplateRenderError rather than match differently.
    Known gap: ^ and $ treat only "\\n" as a line terminator (Java also \\r, \\u0085, \\u2028/9).
    """
    out: list[str] = []
    i, n = 0, len(regex)
    in_class = False
    dotall = False
    while i < n:
        char = regex[i]
        if char == "\\":
            if i + 1 >= n:
                raise MappingTemplateRenderError(f"Java regex {regex!r} ends with an unescaped backslash")
            code = regex[i + 1]
            if code == "Q":
                end = regex.find("\\E", i + 2)
                literal = regex[i + 2 :] if end < 0 else regex[i + 2 : end]
                out.append("".join("\\" + c if not c.isalnum() else c for c in literal))
                i = n if end < 0 else end + 2
                continue
            if code in _UNSUPPORTED_ESCAPES or (code == "x" and regex[i + 2 : i + 3] == "{"):
                raise _unsupported_regex(regex, _UNSUPPORTED_ESCAPES.get(code, "\\x{...}"))
            if code == "e":
                out.append("\\x1b")
            elif code == "z" and not in_class:
                out.append("\\Z")
            elif code == "Z" and not in_class:
                out.append("(?=(?:\r\n|[\n\r\x85\u2028\u2029])?\\Z)")
            elif code == "k" and regex[i + 2 : i + 3] == "<":
                end = regex.index(">", i + 3)
                out.append(f"(?P={regex[i + 3 : end]})")
                i = end + 1
                continue
            else:
                out.append(regex[i : i + 2])
            i += 2
            continue
        if in_class:
            if char == "[" or regex.startswith("&&", i):
                raise _unsupported_regex(regex, "a nested character class, union or intersection")
            if char == "]":
                in_class = False
            out.append(char)
            i += 1
            continue
        if char == "[":
            in_class = True
            out.append(char)
            i += 1
            # A "]" straight after "[" or "[^" is literal in both dialects.
            for literal in ("^", "]"):
                if regex.startswith(literal, i):
                    out.append("\\]" if literal == "]" else literal)
                    i += 1
            continue
        if char == "(" and regex.startswith("(?<", i) and not regex.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        flags = _JAVA_INLINE_FLAGS.match(regex, i) if char == "(" else None
        if flags:
            letters, kind = flags.groups()
            if set(letters) - set("ims") or "-" in letters:
                raise _unsupported_regex(regex, f"the inline flags (?{letters})")
            if "s" in letters:
                if kind == ":" or i > 0:
                    raise _unsupported_regex(regex, "a DOTALL flag that is not global")
                dotall = True
            out.append(flags.group(0))
            i = flags.end()
            continue
        out.append(_JAVA_DOT if char == "." and not dotall else char)
        i += 1
    try:
        return re.compile("".join(out), re.ASCII)
    except re.error as error:
        raise MappingTemplateRenderError(f"invalid Java regex {regex!r}: {error}") from None


def _java_replacement(replacement: str, match: re.Match[str]) -> str:
    """Matcher.appendReplacement: $n (as many digits as name a group), ${name}, \\x is x [java]."""
    out: list[str] = []
    pattern = match.re
    i, n = 0, len(replacement)
    while i < n:
        char = replacement[i]
        if char == "\\":
            if i + 1 >= n:
                raise MappingTemplateRenderError(
                    f"replacement {replacement!r}: character to be escaped is missing (a trailing backslash)"
                )
            out.append(replacement[i + 1])
            i += 2
        elif char == "$":
            i += 1
            if i < n and replacement[i] == "{":
                end = replacement.find("}", i)
                name = replacement[i + 1 : end] if end > 0 else ""
                if end < 0 or name not in pattern.groupindex:
                    raise MappingTemplateRenderError(f"replacement {replacement!r}: no group named {name!r}")
                out.append(match.group(name) or "")
                i = end + 1
                continue
            if i >= n or not ("0" <= replacement[i] <= "9"):
                raise MappingTemplateRenderError(
                    f"replacement {replacement!r}: illegal group reference (write \\$ for a literal $)"
                )
            group = int(replacement[i])
            i += 1
            while i < n and "0" <= replacement[i] <= "9" and group * 10 + int(replacement[i]) <= pattern.groups:
                group = group * 10 + int(replacement[i])
                i += 1
            if group > pattern.groups:
                raise MappingTemplateRenderError(f"replacement {replacement!r}: no group {group}")
            out.append(match.group(group) or "")
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _replace(text: str, regex: str, replacement: str, count: int) -> str:
    _require_strings("replaceAll" if count == 0 else "replaceFirst", regex, replacement)
    return _java_pattern(regex).sub(lambda match: _java_replacement(replacement, match), text, count=count)


def _split(text: str, regex: str, limit: int = 0) -> list[str]:
    """String.split(regex, limit) [java: Pattern.split]: no leading "" for a zero-width match at
    the start, trailing "" dropped when limit is 0, [text] when nothing matches."""
    _require_strings("split", regex)
    parts: list[str] = []
    index = 0
    for match in _java_pattern(regex).finditer(text):
        if limit > 0 and len(parts) >= limit - 1:
            break
        if index == 0 and match.start() == 0 and match.end() == 0:
            continue
        parts.append(text[index : match.start()])
        index = match.end()
    if index == 0 and not parts:
        return [text]
    parts.append(text[index:])
    if limit == 0:
        while parts and parts[-1] == "":
            parts.pop()
    return parts


# ---------------------------------------------------------------------------------------------
# Methods of java.lang.String, java.util.List and java.util.Map that templates call
# ---------------------------------------------------------------------------------------------


def _require_strings(method: str, *values: Any) -> None:
    for value in values:
        if not isinstance(value, str):
            raise MappingTemplateRenderError(f"{method}() takes strings, got {_java_string(value)!r}")


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le", "surrogatepass")


def _from_utf16(data: bytes) -> str:
    return data.decode("utf-16-le", "surrogatepass")


def _substring(text: str, begin: int, end: int | None = None) -> str:
    data = _utf16(text)
    stop = len(data) // 2 if end is None else end
    if not 0 <= begin <= stop <= len(data) // 2:
        raise MappingTemplateRenderError(f"substring({begin}, {stop}) is out of range for a length of {len(data) // 2}")
    return _from_utf16(data[2 * begin : 2 * stop])


def _index_of(text: str, part: str, start: int = 0, *, last: bool = False) -> int:
    _require_strings("indexOf", part)
    data, needle = _utf16(text), _utf16(part)
    found = data.rfind(needle, 0, 2 * start + len(needle)) if last else data.find(needle, 2 * max(start, 0))
    while found % 2:  # a match must start on a code unit, not inside one
        found = data.rfind(needle, 0, found - 1 + len(needle)) if last else data.find(needle, found + 1)
    return found // 2 if found >= 0 else -1


def _char_at(text: str, index: int) -> str:
    if not 0 <= index < len(_utf16(text)) // 2:
        raise MappingTemplateRenderError(f"charAt({index}) is out of range for a length of {len(_utf16(text)) // 2}")
    return _substring(text, index, index + 1)


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


_JAVA_WHITESPACE = "".join(map(chr, range(33)))  # String.trim() strips every char <= U+0020

_STRING_METHODS: dict[str, Callable[..., Any]] = {
    "charAt": _char_at,
    "concat": lambda s, other: s + other,
    "contains": lambda s, part: _require_strings("contains", part) or part in s,
    "endsWith": lambda s, part: _require_strings("endsWith", part) or s.endswith(part),
    "equals": lambda s, other: isinstance(other, str) and s == other,
    "equalsIgnoreCase": lambda s, other: (
        isinstance(other, str)
        and len(_utf16(s)) == len(_utf16(other))
        and (s.upper() == other.upper() or s.lower() == other.lower())
    ),
    "indexOf": _index_of,
    "isEmpty": lambda s: s == "",
    "lastIndexOf": lambda s, part, start=None: _index_of(
        s, part, len(_utf16(s)) // 2 if start is None else start, last=True
    ),
    "length": lambda s: len(_utf16(s)) // 2,
    "matches": lambda s, regex: _require_strings("matches", regex) or _java_pattern(regex).fullmatch(s) is not None,
    "replace": lambda s, old, new: _require_strings("replace", old, new) or s.replace(old, new),
    "replaceAll": lambda s, regex, replacement: _replace(s, regex, replacement, 0),
    "replaceFirst": lambda s, regex, replacement: _replace(s, regex, replacement, 1),
    "split": _split,
    "startsWith": lambda s, part, offset=0: (
        _require_strings("startsWith", part) or _utf16(s)[2 * offset :].startswith(_utf16(part))
    ),
    "substring": _substring,
    "toLowerCase": str.lower,
    "toString": lambda s: s,
    "toUpperCase": str.upper,
    "trim": lambda s: s.strip(_JAVA_WHITESPACE),
}
# Methods the Java classes have that this module does not implement: calling one raises, because
# API Gateway would run it and a silent null here would diverge. (A name Java lacks gives null.)
_STRING_UNIMPLEMENTED = _names(
    "chars codePointAt codePointBefore codePointCount codePoints compareTo compareToIgnoreCase "
    "contentEquals describeConstable formatted getBytes getChars getClass hashCode indent intern "
    "isBlank lines offsetByCodePoints regionMatches repeat resolveConstantDesc strip stripIndent "
    "stripLeading stripTrailing subSequence toCharArray transform translateEscapes"
)


def _list_get(items: list[Any], index: int) -> Any:
    if not isinstance(index, int) or not 0 <= index < len(items):
        raise MappingTemplateRenderError(f"get({_java_string(index)}) is out of range for a list of {len(items)}")
    return items[index]


def _list_set(items: list[Any], index: int, value: Any) -> Any:
    previous = _list_get(items, index)
    items[index] = value
    return previous


def _list_index(items: list[Any], value: Any) -> int:
    return next((i for i, item in enumerate(items) if _vtl_equals(item, value)), -1)


_LIST_METHODS: dict[str, Callable[..., Any]] = {
    "add": lambda items, value: items.append(value) or True,
    "addAll": lambda items, values: items.extend(values) or True,
    "contains": lambda items, value: _list_index(items, value) >= 0,
    "get": _list_get,
    "indexOf": _list_index,
    "isEmpty": lambda items: len(items) == 0,
    "set": _list_set,
    "size": len,
    "toString": _java_string,
}
_LIST_UNIMPLEMENTED = _names(
    "clear clone containsAll ensureCapacity equals forEach getClass hashCode iterator lastIndexOf "
    "listIterator parallelStream remove removeAll removeIf replaceAll retainAll sort spliterator "
    "stream subList toArray trimToSize"
)


class _VtlObject:
    """An object with the methods and properties a template may use, and nothing else."""

    vtl_methods: ClassVar[frozenset[str]] = frozenset()
    vtl_properties: ClassVar[frozenset[str]] = frozenset()


class _MapEntry(_VtlObject):
    vtl_methods = frozenset({"getKey", "getValue", "toString"})
    vtl_properties = frozenset({"key", "value"})

    def __init__(self, key: Any, value: Any) -> None:
        self.key, self.value = key, value

    def getKey(self) -> Any:
        return self.key

    def getValue(self) -> Any:
        return self.value

    def toString(self) -> str:
        return str(self)

    def __str__(self) -> str:
        return f"{_java_string(self.key)}={_java_string(self.value)}"


def _map_put(mapping: dict[Any, Any], key: Any, value: Any) -> Any:
    previous = mapping.get(key)
    mapping[key] = value  # through __setitem__: the response overrides count their assignments
    return previous


def _map_put_all(mapping: dict[Any, Any], values: dict[Any, Any]) -> None:
    for key, value in values.items():
        mapping[key] = value


_MAP_METHODS: dict[str, Callable[..., Any]] = {
    "containsKey": lambda mapping, key: key in mapping,
    "containsValue": lambda mapping, value: any(_vtl_equals(item, value) for item in mapping.values()),
    "entrySet": lambda mapping: [_MapEntry(key, value) for key, value in mapping.items()],
    "get": lambda mapping, key: mapping.get(key),
    "getOrDefault": lambda mapping, key, default: mapping.get(key, default),
    "isEmpty": lambda mapping: len(mapping) == 0,
    "keySet": lambda mapping: list(mapping),
    "put": _map_put,
    "putAll": _map_put_all,
    "remove": lambda mapping, key: mapping.pop(key, None),
    "size": len,
    "toString": _java_string,
    "values": lambda mapping: list(mapping.values()),
}
_MAP_UNIMPLEMENTED = _names(
    "clear clone compute computeIfAbsent computeIfPresent equals forEach getClass hashCode merge "
    "putIfAbsent replace replaceAll"
)

_NUMBER_METHODS: dict[str, Callable[..., Any]] = {
    "doubleValue": float,
    "equals": lambda number, other: _is_number(other) and type(number) is type(other) and number == other,
    "intValue": int,
    "longValue": int,
    "toString": _java_string,
}
_NUMBER_UNIMPLEMENTED = _names("byteValue compareTo floatValue getClass hashCode shortValue")
_BOOLEAN_METHODS: dict[str, Callable[..., Any]] = {
    "booleanValue": lambda flag: flag,
    "equals": lambda flag, other: flag is other,
    "toString": _java_string,
}
_BOOLEAN_UNIMPLEMENTED = _names("compareTo getClass hashCode")


def _methods_of(value: Any) -> tuple[str, dict[str, Callable[..., Any]], frozenset[str]] | None:
    if isinstance(value, str):
        return "String", _STRING_METHODS, _STRING_UNIMPLEMENTED
    if isinstance(value, bool):
        return "Boolean", _BOOLEAN_METHODS, _BOOLEAN_UNIMPLEMENTED
    if _is_number(value):
        return "Number", _NUMBER_METHODS, _NUMBER_UNIMPLEMENTED
    if isinstance(value, dict):
        return "Map", _MAP_METHODS, _MAP_UNIMPLEMENTED
    if isinstance(value, (list, tuple, range)):
        return "List", _LIST_METHODS, _LIST_UNIMPLEMENTED
    return None


def _invoke(target: Any, name: str, args: list[Any]) -> Any:
    """`$target.name(args)`. A method the object's class lacks is null, as in Velocity [vtl17]."""
    if isinstance(target, _VtlObject):
        if name not in target.vtl_methods:
            return None
        kind, method, args = type(target).__name__.strip("_"), getattr(target, name), list(args)
    else:
        methods = _methods_of(target)
        if methods is None:
            return None
        kind, table, unimplemented = methods
        if name not in table:
            if name in unimplemented:
                raise MappingTemplateRenderError(
                    f"{kind}.{name}() is a Java method local/apigateway/vtl.py does not implement; add it there"
                )
            return None
        method, args = table[name], [target, *args]
    try:
        return method(*args)
    except TypeError as error:
        shown = ", ".join(_java_string(arg) for arg in args[0 if isinstance(target, _VtlObject) else 1 :])
        raise MappingTemplateRenderError(f"{kind}.{name}({shown}): {error}") from None


def _property(target: Any, name: str) -> Any:
    """`$target.name`: a map's get("name"); else the getter getName()/isName() [vtl17: UberspectImpl]."""
    if isinstance(target, dict):
        return target.get(name)
    if isinstance(target, _VtlObject):
        return getattr(target, name) if name in target.vtl_properties else None
    capitalised = name[:1].upper() + name[1:]
    for getter in (f"get{capitalised}", f"is{capitalised}"):
        result = _invoke(target, getter, [])
        if result is not None:
            return result
    return None


def _item(target: Any, index: Any) -> Any:
    """`$target[index]` (Velocity 1.7 index notation): a list position or a map key."""
    if isinstance(target, dict):
        return target.get(index)
    if isinstance(target, (list, tuple, range)) and isinstance(index, int) and not isinstance(index, bool):
        return _list_get(list(target), index)
    raise MappingTemplateRenderError(f"cannot index {_java_string(target)!r} with [{_java_string(index)}]")


# ---------------------------------------------------------------------------------------------
# $util [vars: "$util variables"]
# ---------------------------------------------------------------------------------------------


def _escape_javascript(text: str) -> str:
    """commons-lang StringEscapeUtils.escapeJavaScript (escapeJavaStyleString(str, true, true)),
    the function [vars] describes ("using JavaScript string rules", ' becomes \\'), per UTF-16
    code unit: \\" \\\\ \\' \\/ \\b \\f \\n \\r \\t; other controls and everything above U+007F as
    \\uXXXX with upper-case hex (an astral character as its two surrogates); DEL (U+007F) as is."""
    out: list[str] = []
    data = _utf16(text)
    for offset in range(0, len(data), 2):
        unit = data[offset] | data[offset + 1] << 8
        if unit > 0x7F:
            out.append(f"\\u{unit:04X}")
        elif unit < 0x20:
            out.append(_CONTROL_ESCAPES.get(unit, f"\\u{unit:04X}"))
        else:
            char = chr(unit)
            out.append("\\" + char if char in "\"'\\/" else char)
    return "".join(out)


_CONTROL_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r"}
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")


class _Util(_VtlObject):
    vtl_methods = frozenset({"escapeJavaScript", "parseJson", "urlEncode", "urlDecode", "base64Encode", "base64Decode"})

    @staticmethod
    def _text(function: str, value: Any) -> str:
        if not isinstance(value, str):
            raise MappingTemplateRenderError(
                f"$util.{function} takes a string, got {_java_string(value)!r}; "
                "what API Gateway does with another type is not documented"
            )
        return value

    def escapeJavaScript(self, value: Any) -> str:
        return _escape_javascript(self._text("escapeJavaScript", value))

    def parseJson(self, value: Any) -> Any:
        # "Takes 'stringified' JSON and returns an object representation of the result" [vars].
        try:
            return _from_json(_parse_json(self._text("parseJson", value)))
        except ValueError as error:
            raise MappingTemplateRenderError(f"$util.parseJson: not JSON: {error}") from None

    def urlEncode(self, value: Any) -> str:
        # application/x-www-form-urlencoded as java.net.URLEncoder.encode(s, "UTF-8") writes it [java]:
        # letters, digits and . - * _ stay, space is +, the rest is %XX of UTF-8 ("~" too); an
        # unpaired surrogate encodes as "?" (String.getBytes' replacement).
        text = self._text("urlEncode", value)
        return urllib.parse.quote_plus(text, safe="*", errors="replace").replace("~", "%7E")

    def urlDecode(self, value: Any) -> str:
        # java.net.URLDecoder.decode(s, "UTF-8") [java]: + is space; a "%" not followed by two hex
        # digits is an IllegalArgumentException; bytes that are not UTF-8 decode to U+FFFD.
        text = self._text("urlDecode", value)
        if _PERCENT_ESCAPE.search(text):
            raise MappingTemplateRenderError(f"$util.urlDecode: incomplete or invalid %-escape in {text!r}")
        return urllib.parse.unquote_plus(text, errors="replace")

    def base64Encode(self, value: Any) -> str:
        # Base64 (RFC 4648, "=" padded) of the string's UTF-8 bytes [vars, java: java.util.Base64].
        return base64.b64encode(self._text("base64Encode", value).encode("utf-8", "replace")).decode("ascii")

    def base64Decode(self, value: Any) -> str:
        # java.util.Base64's basic decoder accepts missing "=" padding but no other character;
        # the bytes become a UTF-8 string (malformed sequences as U+FFFD) [java].
        text = self._text("base64Decode", value)
        try:
            data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except binascii.Error as error:
            raise MappingTemplateRenderError(f"$util.base64Decode: not base64: {text!r} ({error})") from None
        return data.decode("utf-8", "replace")


_UTIL = _Util()


# ---------------------------------------------------------------------------------------------
# $input [vars: "$input variables"], with JSONPath as Jayway JsonPath evaluates it
# ---------------------------------------------------------------------------------------------

_MISSING = object()
_NAME_END = re.compile(r"[.\[]")


def _jsonpath_steps(path: str) -> tuple[list[tuple[str, Any]], bool]:
    """Parse the JSONPath subset templates use: $, .name, ['name'], [n], [-n], [n,m], [a:b], * and
    ..name. Returns the steps and whether the path is definite (names one value, not a list).
    Filters, functions and multi-name brackets raise: they are not implemented here."""
    text = path.strip()
    if not text:
        raise MappingTemplateRenderError("empty JSONPath")
    if not text.startswith("$"):
        # Jayway's PathCompiler.compile prefixes "$." to a path that starts with neither $ nor @.
        text = "$." + text
    steps: list[tuple[str, Any]] = []
    definite = True
    i = 1
    while i < len(text):
        if text.startswith("..", i):
            end = _NAME_END.search(text, i + 2)
            name = text[i + 2 : end.start() if end else len(text)]
            if not name or "(" in name:
                raise MappingTemplateRenderError(f"JSONPath {path!r}: only ..name and ..* deep scans are supported")
            steps.append(("scan", name))
            definite = False
            i += 2 + len(name)
        elif text[i] == ".":
            end = _NAME_END.search(text, i + 1)
            name = text[i + 1 : end.start() if end else len(text)]
            if not name or "(" in name:
                raise MappingTemplateRenderError(f"JSONPath {path!r}: bad or unsupported name {name!r}")
            steps.append(("wild", None) if name == "*" else ("keys", [name]))
            definite = definite and name != "*"
            i += 1 + len(name)
        elif text[i] == "[":
            end = text.find("]", i)
            if end < 0:
                raise MappingTemplateRenderError(f"JSONPath {path!r}: unclosed [")
            step = _bracket_step(path, text[i + 1 : end].strip())
            steps.append(step)
            definite = definite and (step[0] in ("keys", "indexes") and len(step[1]) == 1)
            i = end + 1
        else:
            raise MappingTemplateRenderError(f"JSONPath {path!r}: unexpected {text[i]!r}")
    return steps, definite


def _bracket_step(path: str, inside: str) -> tuple[str, Any]:
    if inside == "*":
        return ("wild", None)
    if inside[:1] in ("'", '"'):
        if len(inside) < 2 or inside[-1] != inside[0] or inside[0] in inside[1:-1]:
            raise MappingTemplateRenderError(f"JSONPath {path!r}: one quoted name per [...] is supported")
        return ("keys", [inside[1:-1]])
    try:
        if ":" in inside:
            start, _, stop = inside.partition(":")
            return ("slice", slice(int(start) if start.strip() else None, int(stop) if stop.strip() else None))
        return ("indexes", [int(part) for part in inside.split(",")])
    except ValueError:
        raise MappingTemplateRenderError(f"JSONPath {path!r}: [{inside}] is not supported here") from None


def _descendants(node: Any) -> list[Any]:
    children = list(node.values()) if isinstance(node, dict) else list(node) if isinstance(node, list) else []
    found = []
    for child in children:
        found.append(child)
        found.extend(_descendants(child))
    return found


def _jsonpath(document: Any, path: str) -> Any:
    """The value a definite path names (or _MISSING), or the list an indefinite path matches."""
    steps, definite = _jsonpath_steps(path)
    nodes = [document]
    for kind, argument in steps:
        found: list[Any] = []
        for node in nodes:
            if kind == "keys" and isinstance(node, dict):
                found.extend(node[key] for key in argument if key in node)
            elif kind == "indexes" and isinstance(node, list):
                found.extend(node[index] for index in argument if -len(node) <= index < len(node))
            elif kind == "slice" and isinstance(node, list):
                found.extend(node[argument])
            elif kind == "wild":
                found.extend(node.values() if isinstance(node, dict) else node if isinstance(node, list) else [])
            elif kind == "scan":
                for candidate in [node, *_descendants(node)]:
                    if argument == "*" and candidate is not node:
                        found.append(candidate)
                    elif isinstance(candidate, dict) and argument in candidate:
                        found.append(candidate[argument])
        nodes = found
    if definite:
        return nodes[0] if nodes else _MISSING
    return nodes


class _Input(_VtlObject):
    vtl_methods = frozenset({"json", "path", "params"})
    vtl_properties = frozenset({"body"})

    def __init__(self, body: str, params: dict[str, dict[str, str]]) -> None:
        # An empty payload reads as "{}" [aws-rec: localstack test_input_body_formatting].
        self.body = body or "{}"
        self._raw = body
        self._params = params

    def _value(self, path: Any) -> Any:
        if not isinstance(path, str):
            raise MappingTemplateRenderError(f"a JSONPath is a string, got {_java_string(path)!r}")
        try:
            document = _parse_json(self._raw)
        except ValueError:
            return _MISSING  # an empty or non-JSON payload matches nothing [ls: finding from the AWS console]
        return _jsonpath(document, path)

    def path(self, path: Any) -> Any:
        # "Takes a JSONPath expression string (x) and returns a JSON object representation of the
        # result" [vars]. A missing key or a JSON null is "" [aws-rec: localstack
        # test_input_path_template_formatting: renders empty, == "" and == $null].
        value = self._value(path)
        return "" if value is _MISSING or value is None else _from_json(value)

    def json(self, path: Any) -> str:
        # "Evaluates a JSONPath expression and returns the results as a JSON string" [vars]. A missing
        # key or a JSON null gives the JSON string "" -- two quote characters [ls: $input.json
        # unit tests, "finding from AWS console"]. The JSON is compact; its exact spacing and
        # escaping on AWS are not documented, so read it as JSON, not as text.
        value = self._value(path)
        return '""' if value is _MISSING or value is None else _json_text(value)

    def params(self, *name: Any) -> Any:
        # params(): "a map of all the request parameters"; params(x): "the value of a method request
        # parameter from the path, query string, or header value (searched in that order)" [vars].
        if not name:
            return self._params
        if len(name) != 1:
            raise MappingTemplateRenderError("$input.params takes no argument or one name")
        for where in ("path", "querystring", "header"):
            if name[0] in self._params[where]:
                return self._params[where][name[0]]
        return ""  # a parameter the request lacks is "" [ls; aws-rec: null references are ""]


# ---------------------------------------------------------------------------------------------
# $context, with the response overrides [overrides]
# ---------------------------------------------------------------------------------------------


class _OverrideMap(dict):
    """A map each key of which a template may set once: "Overrides are final. An override may only
    be applied to each parameter once. If you try to override the same parameter multiple times,
    API Gateway returns a 5XX response" [overrides]."""

    def __init__(self, name: str, allowed: frozenset[str] | None = None) -> None:
        super().__init__()
        self._name, self._allowed = name, allowed

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._allowed is not None and key not in self._allowed:
            raise MappingTemplateRenderError(f"{self._name}.{key} cannot be set (only {', '.join(self._allowed)})")
        if key in self:
            raise MappingTemplateRenderError(
                f"{self._name}.{key} is set twice; overrides are final and API Gateway answers 5XX "
                "(set a variable and apply the override once, at the end)"
            )
        super().__setitem__(key, value)


class _ResponseOverride(dict):
    """$context.responseOverride: .status and .header.<name>, each settable once [overrides]."""

    def __init__(self) -> None:
        super().__init__(header=_OverrideMap("$context.responseOverride.header"))
        self._status = _OverrideMap("$context.responseOverride", frozenset({"status"}))

    def __setitem__(self, key: Any, value: Any) -> None:
        self._status[key] = value  # raises for anything but a first "status"
        super().__setitem__(key, value)

    def status(self) -> int | None:
        if "status" not in self:
            return None
        status = self["status"]
        if isinstance(status, str) and status.isascii() and status.isdigit():
            status = int(status)
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            raise MappingTemplateRenderError(
                f"$context.responseOverride.status is {_java_string(status)!r}, not an HTTP status code"
            )
        return status

    def headers(self) -> dict[str, str]:
        return {str(name): _java_string(value) for name, value in self["header"].items()}


class _NotHere(dict):
    """An override map this kind of template may not set."""

    def __init__(self, message: str) -> None:
        super().__init__()
        self._message = message

    def __getitem__(self, key: Any) -> Any:
        raise MappingTemplateRenderError(self._message)

    def __setitem__(self, key: Any, value: Any) -> None:
        raise MappingTemplateRenderError(self._message)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


class _ContextMap(dict):
    """$context: a template may add keys, but not replace the override maps."""

    def __setitem__(self, key: Any, value: Any) -> None:
        if key in ("requestOverride", "responseOverride") and key in self:
            raise MappingTemplateRenderError(f"$context.{key} cannot be replaced; set its entries")
        super().__setitem__(key, value)


def _context(context: Mapping[str, Any], *, response: bool) -> dict[str, Any]:
    for reserved in ("requestOverride", "responseOverride"):
        if reserved in context:
            raise ValueError(f"context must not hold {reserved}: the template sets it")
    result = _ContextMap(_plain(context))
    authorizer = result.get("authorizer")
    if isinstance(authorizer, dict):
        # $context.authorizer.<key> is "the stringified value" of the authorizer's context entry:
        # numKey 1 reads "1", boolKey true reads "true" [vars].
        for key, value in authorizer.items():
            if value is not None and not isinstance(value, (dict, list)):
                authorizer[key] = _java_string(value)
    result["requestOverride"] = _NotHere(
        "$context.requestOverride is not supported by local/apigateway/vtl.py"
        if not response
        else "$context.requestOverride can only be set in a request template [overrides]"
    )
    result["responseOverride"] = (
        _ResponseOverride()
        if response
        else _NotHere("$context.responseOverride belongs in an integration response template [overrides]")
    )
    return result


def _namespace(
    body: str,
    path_params: Mapping[str, str] | None,
    query: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    context: Mapping[str, Any],
    stage_variables: Mapping[str, str] | None,
    *,
    response: bool,
) -> dict[str, Any]:
    if not isinstance(body, str):
        raise TypeError(f"body must be the payload as a str, got {type(body).__name__}")
    params = {
        "path": dict(path_params or {}),
        "querystring": dict(query or {}),
        "header": dict(headers or {}),
    }
    return {
        "input": _Input(body, params),
        "util": _UTIL,
        "context": _context(context, response=response),
        "stageVariables": dict(stage_variables or {}),
    }


# ---------------------------------------------------------------------------------------------
# The engine: a private copy of airspeed.operators, patched here and only here
# ---------------------------------------------------------------------------------------------


class _UnsupportedDirective(Exception):
    pass


def _load_airspeed_copy() -> Any:
    spec = importlib.util.find_spec("airspeed.operators")
    if spec is None or spec.origin is None:
        raise ImportError("airspeed-ext is not installed (it is in requirements-dev.txt)")
    private = importlib.util.spec_from_file_location(f"{__name__}._airspeed_operators", spec.origin)
    assert private is not None and private.loader is not None
    module = importlib.util.module_from_spec(private)
    private.loader.exec_module(module)
    return module


@functools.cache
def _build_engine() -> Any:
    """airspeed.operators, loaded a second time for this module alone, with API Gateway's semantics:

    - a reference that is null or undefined evaluates to "" [aws-rec];
    - #if, !, && and || test truth as Velocity 1.7 does (_truthy), && and || short-circuit;
    - == and the other operators follow Velocity 1.7 (_BINARY);
    - `$a.b` / `$a.b(...)` resolve as Java properties and methods (_property, _invoke), so Python's
      own str/list/dict methods are never reachable from a template;
    - #foreach iterates lists and a map's values, and skips anything else [vtl17];
    - values print as Java's toString() (_java_string);
    - #macro, #evaluate, #include, #parse and airspeed's own #return are refused: API Gateway
      renders #evaluate, #return and macro calls as literal text [aws-rec]; a call to an
      undefined macro, `#name(...)`, is literal text here too.
    """
    engine = _load_airspeed_copy()

    original_reference_parse = engine.FormalReference.parse

    def reference_parse(self: Any) -> None:
        original_reference_parse(self)
        if self.calculate is not None:
            inner = self.calculate

            def calculate(namespace: Any, loader: Any) -> Any:
                value = inner(namespace, loader)
                return "" if value is None else value

            self.calculate = calculate

    engine.FormalReference.parse = reference_parse

    engine.Condition.calculate = lambda self, namespace, loader: _truthy(self.expression.calculate(namespace, loader))
    engine.UnaryOperatorValue.calculate = lambda self, namespace, loader: (
        not _truthy(self.value.calculate(namespace, loader))
    )

    def operator_parse(self: Any) -> None:
        (operator,) = self.identity_match(self.BINARY_OP)
        if operator not in _BINARY_PRECEDENCE:
            raise engine.NoMatch()
        self.operator = operator

    engine.BinaryOperator.parse = operator_parse

    def expression_calculate(self: Any, namespace: Any, loader: Any) -> Any:
        items = self.expression
        position = 0

        def tree(minimum: int) -> Any:  # precedence climbing, left-associative
            nonlocal position
            node: Any = items[position]
            position += 1
            while position < len(items):
                operator = items[position].operator
                if _BINARY_PRECEDENCE[operator] < minimum:
                    break
                position += 1
                node = (operator, node, tree(_BINARY_PRECEDENCE[operator] + 1))
            return node

        def value(node: Any) -> Any:
            if not isinstance(node, tuple):
                return node.calculate(namespace, loader)
            operator, left, right = node
            if operator in ("&&", "and"):
                return _truthy(value(left)) and _truthy(value(right))
            if operator in ("||", "or"):
                return _truthy(value(left)) or _truthy(value(right))
            return _BINARY[operator](value(left), value(right))

        return value(tree(0))

    engine.Expression.calculate = expression_calculate

    def name_or_call(self: Any, target: Any, loader: Any, top_namespace: Any) -> Any:
        if isinstance(target, engine.LocalNamespace):
            try:
                result = target[self.name]
            except KeyError:
                result = None
            if isinstance(result, engine._FunctionDefinition):  # a #define block
                args = self.parameters.calculate(top_namespace, loader) if self.parameters else []
                stream = engine.StoppableStream()
                result.execute_function(stream, top_namespace, args, loader)
                # `$block()` prints the block, then "()" [aws-rec: test_use_define_with_no_parameters]
                return stream.getvalue() + (self.parameters.my_text() if self.parameters and not args else "")
            if self.parameters is not None:
                raise MappingTemplateRenderError(f"${self.name}(...) calls a variable; methods need an object")
        elif self.parameters is not None:
            result = _invoke(target, self.name, self.parameters.calculate(top_namespace, loader))
        else:
            result = _property(target, self.name)
        if self.index is not None and result is not None:
            result = _item(result, self.index.calculate(top_namespace, loader))
        return result

    engine.NameOrCall.calculate = name_or_call

    def foreach(self: Any, stream: Any, namespace: Any, loader: Any) -> None:
        iterable = self.value.calculate(namespace, loader)
        if isinstance(iterable, dict):
            items = list(iterable.values())  # a Map's values [vtl17 user guide, #foreach]
        elif isinstance(iterable, (list, tuple, range)):
            items = list(iterable)
        else:
            return  # null, "" or a non-collection: no iterations [vtl17; aws-rec: unset variable]
        for count, item in enumerate(items, start=1):
            scope = engine.LocalNamespace(namespace)
            has_next = count < len(items)
            scope["velocityCount"], scope["velocityHasNext"] = count, has_next
            scope["foreach"] = {
                "count": count,
                "index": count - 1,
                "hasNext": has_next,
                "first": count == 1,
                "last": not has_next,
            }
            scope[self.loop_var_name] = item
            self.block.evaluate(stream, scope, loader)

    engine.ForeachDirective.evaluate_raw = foreach

    engine.value_to_string = _java_string

    def refuse(self: Any) -> None:
        self.identity_match(self.START)
        text = self.full_text()[: self.start]
        line, column = text.count("\n") + 1, len(text) - text.rfind("\n")
        raise _UnsupportedDirective(
            f"line {line}, column {column}: {self.my_text().strip()} is not supported in API Gateway "
            "mapping templates (API Gateway prints #evaluate, #return and macro calls as literal text)"
        )

    for directive in (engine.MacroDefinition, engine.EvaluateDirective, engine.IncludeDirective, engine.ParseDirective):
        directive.parse = refuse  # ReturnDirective inherits EvaluateDirective's
    engine.MacroCall.evaluate_raw = lambda self, stream, namespace, loader: stream.write(self.my_text())
    return engine


@functools.lru_cache(maxsize=256)
def _compile(template: str) -> Any:
    engine = _build_engine()
    compiled = engine.Template(template, filename="mapping template")
    try:
        compiled.ensure_compiled()
    except engine.TemplateSyntaxError as error:
        raise MappingTemplateSyntaxError(f"mapping template does not parse: {error}") from None
    except _UnsupportedDirective as error:
        raise MappingTemplateSyntaxError(f"mapping template does not parse: {error}") from None
    return compiled


def _render(template: str, namespace: dict[str, Any]) -> str:
    if not isinstance(template, str):
        raise TypeError(f"template must be a str, got {type(template).__name__}")
    compiled = _compile(template)
    engine = _build_engine()
    try:
        return compiled.merge(namespace)
    except engine.TemplateExecutionError as error:
        raise MappingTemplateRenderError(str(error)) from error
