"""local/apigateway_vtl: mapping templates rendered the way API Gateway renders them.

Each expected value comes from the source named beside it, not from running the module:
  [vars]      https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-template-reference.html
  [overrides] https://docs.aws.amazon.com/apigateway/latest/developerguide/apigateway-override-request-response-parameters.html
  [examples]  https://docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-mapping-variable-examples.html
  [aws-rec]   output recorded from real API Gateway by LocalStack: github.com/localstack/airspeed
              tests/test_templating.snapshot.json (test names given), and @markers.aws.validated
              tests in github.com/localstack/localstack tests/aws/services/apigateway/
  [ls]        LocalStack's implementation and unit tests (maintainers checked the AWS console)
  [vtl17]     Apache Velocity 1.7 (user guide and source), the engine API Gateway matches
  [java]      the JDK / commons-lang behaviour of the objects a template holds
"""

from __future__ import annotations

import json

import airspeed
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from local.apigateway.vtl import (
    MappingTemplateRenderError,
    MappingTemplateSyntaxError,
    RenderedResponse,
    render_request_template,
    render_response_template,
)

CONTEXT = {"requestId": "req-1", "authorizer": {"userId": "user-1"}}


def render(template, *, body="{}", path=None, query=None, headers=None, context=CONTEXT, stage_variables=None):
    return render_request_template(
        template,
        body=body,
        path_params=path or {},
        query=query or {},
        headers=headers or {},
        context=context,
        stage_variables=stage_variables,
    )


def with_value(template, value):
    """Render `template` with $v set to `value`, which travels as data in the JSON payload."""
    return render("#set($v = $input.path('$.v'))" + template, body=json.dumps({"v": value}))


def respond(template, *, body="{}", context=CONTEXT):
    return render_response_template(template, body=body, context=context)


# --- $util.escapeJavaScript -------------------------------------------------------------------
# commons-lang StringEscapeUtils.escapeJavaScript = escapeJavaStyleString(str, true, true) [java],
# the function [vars] describes: per UTF-16 code unit, > U+007F and the controls without a short
# form become \uXXXX with upper-case hex; DEL (U+007F) is neither, so it stays.
ESCAPES = [
    ('"', '\\"'),
    ("\\", "\\\\"),
    ("'", "\\'"),
    ("/", "\\/"),
    ("\b", "\\b"),
    ("\f", "\\f"),
    ("\n", "\\n"),
    ("\r", "\\r"),
    ("\t", "\\t"),
    ("\x00", "\\u0000"),
    ("\x01", "\\u0001"),
    ("\x0b", "\\u000B"),
    ("\x1b", "\\u001B"),
    ("\x1f", "\\u001F"),
    ("\x7f", "\x7f"),
    ("\x80", "\\u0080"),
    ("é", "\\u00E9"),
    ("\u00ff", "\\u00FF"),
    ("\u0100", "\\u0100"),
    ("\u0fff", "\\u0FFF"),
    ("\u1234", "\\u1234"),
    ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"),
    ("\ufeff", "\\uFEFF"),
    ("\uffff", "\\uFFFF"),
    ("😀", "\\uD83D\\uDE00"),  # U+1F600 is the UTF-16 pair D83D DE00
    ("\U0010ffff", "\\uDBFF\\uDFFF"),
    ("\ud800", "\\uD800"),  # an unpaired surrogate is one code unit
    (" !#$%&()*+,-.09:;<=>?@AZ[]^_`az{|}~", " !#$%&()*+,-.09:;<=>?@AZ[]^_`az{|}~"),
    ('He didn\'t say, "Stop!"', 'He didn\\\'t say, \\"Stop!\\"'),  # the commons-lang javadoc example
]


@pytest.mark.parametrize(("value", "escaped"), ESCAPES)
def test_escape_javascript_escapes_each_class_of_character(value, escaped):
    assert with_value("$util.escapeJavaScript($v)", value) == escaped


def test_escape_javascript_needs_a_string():
    with pytest.raises(MappingTemplateRenderError, match="escapeJavaScript takes a string"):
        render("$util.escapeJavaScript($input.path('$.n'))", body='{"n": 5}')


# --- the replaceAll idiom of [vars]: "$util.escapeJavaScript(data).replaceAll("\\'","'")" -------
# The VTL string "\\'" is not unescaped, so the Java regex is \\' : a backslash, then a quote.
IDIOM = r"""$util.escapeJavaScript($v).replaceAll("\\'","'")"""
IDIOM_CASES = [
    ("it's", "it's"),
    ("''", "''"),
    ("\\'", "\\\\'"),  # \'  -> \\\'  -> \\'
    ("\\\\'", "\\\\\\\\'"),  # \\' -> \\\\\' -> \\\\'
    ("'\\", "'\\\\"),
    ("a\\", "a\\\\"),
    ("\\'\\'", "\\\\'\\\\'"),
    ("say \"hi\" 'now'", "say \\\"hi\\\" 'now'"),
]


@pytest.mark.parametrize(("value", "expected"), IDIOM_CASES)
def test_replace_all_idiom_turns_escaped_quotes_back(value, expected):
    out = with_value(IDIOM, value)
    assert out == expected
    assert json.loads(f'"{out}"') == value  # what the idiom is for: a valid JSON string


# --- JSON inside a JSON string: escaped twice -------------------------------------------------
DOUBLE = r"""{"input": "{\"k\": \"$util.escapeJavaScript($util.escapeJavaScript($v).replaceAll("\\'","'")).replaceAll("\\'","'")\"}"}"""
HOSTILE = [
    "",
    '"',
    '""quoted""',
    "\\",
    "trailing\\",
    "\\\\double",
    "'",
    "\\'",
    "it's \\'really\\' \"so\"",
    "\x00\x01\x1f\x7f",
    "\b\f\n\r\t",
    "\u2028\u2029",
    "😀 and \ud83d alone",
    "</script><!--",
    '{"k": "v"}',
    "$v #if($x) ## not a template",
    "é ü ß 中文",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_double_escaped_value_survives_two_json_decodes(value):
    out = with_value(DOUBLE, value)
    assert json.loads(json.loads(out)["input"])["k"] == value


AWKWARD = st.one_of(
    st.sampled_from(list("\"\\'/\b\f\n\r\t\x00\x1f\x7f\u2028\u2029😀")),
    st.characters(codec=None, exclude_categories=()),  # everything, unpaired surrogates included
)


@settings(max_examples=300, deadline=None)
@given(st.text(AWKWARD))
def test_double_escape_round_trip_property(value):
    out = with_value(DOUBLE, value)
    assert json.loads(json.loads(out)["input"])["k"] == value


# --- null and undefined references ------------------------------------------------------------
def test_undefined_reference_renders_empty():
    # [aws-rec test_unmatched_name_does_not_get_substituted: "Hello $name" -> "Hello "]
    assert render("[$undefined][$!undefined][$undefined.deeper.still]") == "[][][]"


def test_undefined_reference_is_true_in_if():
    # [aws-rec test_else_block_evaluated_when_if_expression_false, test_if_statement_considers_None_to_be_truthy]
    assert render("#if($undefined)true#{else}false#end") == "true"
    # [aws-rec test_logical_negation_operator: !$value with value null -> false]
    assert render("#if(!$undefined)true#{else}false#end") == "false"


def test_undefined_reference_equals_empty_string_and_null():
    # [aws-rec localstack test_input_path_template_formatting: isNull and isEmptyString both "true"]
    assert render('#if($undefined == "")A#end#if($undefined == $alsoUndefined)B#end') == "AB"
    # [aws-rec localstack test_apigateway_to_kinesis: `$foo.bar.stuff != ''` is false]
    assert render("#if($foo.bar.stuff != '')set#{else}unset#end") == "unset"


def test_presence_test_that_works():
    template = '#if("$!x" != "")present#{else}absent#end'
    assert render("#set($x = $input.path('$.k'))" + template, body='{"k": "v"}') == "present"
    assert render("#set($x = $input.path('$.k'))" + template, body="{}") == "absent"
    assert render("#set($x = $input.path('$.k'))" + template, body='{"k": null}') == "absent"


TRUTH = {
    # Velocity 1.7 ASTReference.evaluate: null -> false, Boolean -> its value, anything else true [vtl17]
    "emptyList": "T",
    "emptyMap": "T",
    "emptyString": "T",
    "zero": "T",
    "false": "F",
    "true": "T",
    "null": "T",  # a JSON null is "" in a template [aws-rec], and "" is true
    "missing": "T",
}


@pytest.mark.parametrize(("key", "expected"), TRUTH.items())
def test_if_truth_of_values(key, expected):
    body = json.dumps(
        {"emptyList": [], "emptyMap": {}, "emptyString": "", "zero": 0, "false": False, "true": True, "null": None}
    )
    assert render(f"#if($input.path('$.{key}'))T#{{else}}F#end", body=body) == expected


def test_if_truth_of_literals():
    assert render("#set($l = [])#set($m = {})#if($l)L#end#if($m)M#end#if(false)F#end#if(true)T#end") == "LMT"


def test_and_or_short_circuit():
    # ASTAndNode/ASTOrNode stop at the first operand that decides [vtl17]: get(0) is never called.
    template = '#set($l = [])#if($l.size() > 0 && $l.get(0) == "x")yes#{else}no#end'
    assert render(template) == "no"
    assert render('#set($l = [])#if($l.isEmpty() || $l.get(0) == "x")yes#end') == "yes"


# --- Velocity directives and operators --------------------------------------------------------
def test_foreach_has_next_and_counters():
    # $foreach.hasNext as in [examples]; $foreach.index/count and $velocityCount [aws-rec test_loop_*]
    assert (
        render("#foreach($i in $input.path('$.items'))$i#if($foreach.hasNext),#end#end", body='{"items": [1, 2, 3]}')
        == "1,2,3"
    )
    assert render('#foreach($w in ["a", "b"])$foreach.index$foreach.count$velocityCount,#end') == "011,122,"


def test_foreach_over_a_map_iterates_values_and_over_nothing_is_empty():
    # a Map in #foreach yields its values; keys need .keySet() [vtl17 user guide, #foreach]
    assert render("#foreach($v in $input.path('$'))$v;#end", body='{"a": 1, "b": 2}') == "1;2;"
    # [aws-rec test_foreach_with_unset_variable_expands_to_nothing]
    assert render("#foreach($v in $values)foo#end") == ""


def test_if_elseif_else_and_set():
    template = "#set($n = $input.path('$.n'))#if($n == 1)one#elseif($n == 2)two#{else}other#end"
    assert render(template, body='{"n": 2}') == "two"
    assert render(template, body='{"n": 3}') == "other"
    assert render('#set($x = "a")#set($x = "$x$x")$x') == "aa"


def test_equality_follows_velocity():
    # ASTEQNode: same class -> equals(); otherwise toString() of both [vtl17]
    body = '{"s": "abc", "t": true, "one": 1}'
    assert render("""#if($input.path('$.s') == "abc")A#end#if($input.path('$.s') == 'ABC')B#end""", body=body) == "A"
    assert render("""#if($input.path('$.t') == "true")T#end#if($input.path('$.one') == "1")O#end""", body=body) == "TO"
    assert render('#if("a" != "b")ne#end') == "ne"


def test_arithmetic_follows_java():
    # integer division truncates, % takes the dividend's sign, a String operand concatenates [vtl17, java]
    assert render('#set($a = 7 / 2)#set($b = -7 / 2)#set($c = -7 % 2)#set($d = "n" + 1)$a $b $c $d') == "3 -3 -1 n1"


def test_values_print_as_java():
    body = '{"price": 10.00, "big": 1e20, "flag": false}'
    # [vars]: "$input.body ... preserve entire floating point numbers, such as 10.00"; elsewhere a double
    # prints as Double.toString: 10.0, 1.0E20 [java]
    assert render("$input.body|$input.path('$.price')|$input.path('$.big')|$input.path('$.flag')", body=body) == (
        body + "|10.0|1.0E20|false"
    )


# --- $input -----------------------------------------------------------------------------------
def test_input_body_is_the_raw_payload_and_empty_reads_as_braces():
    assert render("$input.body", body='{"a":  1}') == '{"a":  1}'  # "the raw payload as a string" [vars]
    assert render("$input.body", body="") == "{}"  # [aws-rec localstack test_input_body_formatting]


def test_input_json_returns_json_text():
    body = json.dumps({"pets": [{"id": 1, "type": "dog"}, {"id": 2, "type": "cat"}], "s": 'x"y'})
    assert json.loads(render("$input.json('$.pets')", body=body)) == json.loads(body)["pets"]  # [vars]
    assert json.loads(render("$input.json('$')", body=body)) == json.loads(body)
    assert json.loads(render("$input.json('$.s')", body=body)) == 'x"y'
    assert json.loads(render("$input.json('$.pets[*].id')", body=body)) == [1, 2]


def test_input_json_of_missing_or_null_is_an_empty_json_string():
    # [ls: $input.json unit tests, "finding from AWS console"]: two quote characters
    assert render("$input.json('$.missing')", body='{"a": 1}') == '""'
    assert render("$input.json('$.a')", body='{"a": null}') == '""'
    assert render("$input.json('$.a')", body="not json") == '""'


def test_input_path_returns_objects_with_java_methods():
    body = json.dumps({"pets": [1, 2, 3], "m": {"a": "x", "b": 2}, "s": "aBc"})
    # "$input.path('$.pets').size() would return "3"" [vars]
    assert render("$input.path('$.pets').size()", body=body) == "3"
    template = "#set($m = $input.path('$.m'))$m.get('a') $m.a $m.containsKey('a') $m.containsKey('z') $m.size() $m.isEmpty() $m.keySet()"
    assert render(template, body=body) == "x x true false 2 false [a, b]"
    template = "#set($l = $input.path('$.pets'))$l.get(1) $l.isEmpty() $l.contains(3) $l.contains(4) $l[0]"
    assert render(template, body=body) == "2 false true false 1"
    template = "#set($s = $input.path('$.s'))$s.length() $s.toLowerCase() $s.toUpperCase() $s.contains('B') $s.equals('aBc') $s.matches('[a-zA-Z]+') $s.replace('B', '-') $s.substring(1) $s.indexOf('c')"
    assert render(template, body=body) == "3 abc ABC true true true a-c Bc 2"


def test_input_path_prints_maps_as_java_and_lists_as_json():
    # [aws-rec localstack test_input_path_template_formatting]
    assert render("$input.path('$')", body='{"foo": "bar"}') == "{foo=bar}"
    assert render("$input.path('$')", body='[{"foo": "bar"}]') == '[{"foo":"bar"}]'
    assert render("$input.path('$')", body='{"foo": [{"nested": "bar"}]}') == '{foo=[{"nested":"bar"}]}'
    assert render("$input.path('$')[0]", body='[{"foo": "bar"}]') == "{foo=bar}"
    assert render("$input.path('$').toString()", body='{"foo": "bar"}') == "{foo=bar}"


def test_input_path_of_missing_or_null_is_empty():
    # [aws-rec localstack test_input_path_template_formatting: "body": , "isEmptyString": "true"]
    template = '#set($r = $input.path("$.k"))[$r]#if($r == "")E#end'
    assert render(template, body='{"a": 1}') == "[]E"
    assert render(template, body='{"k": null}') == "[]E"
    assert render(template, body="") == "[]E"  # [ls: test_input_path_empty_body]


def test_input_path_without_dollar_is_relative_to_the_root():
    # Jayway JsonPath PathCompiler.compile prefixes "$." (the JSONPath library API Gateway's
    # $input.path output matches: LinkedHashMap objects, JSONArray arrays)
    assert render("$input.path('a.b')", body='{"a": {"b": "deep"}}') == "deep"


def test_input_path_indefinite_paths_return_lists():
    body = '{"items": [{"id": 1}, {"id": 2, "sub": {"id": 3}}]}'
    assert render("$input.path('$..id').size()", body=body) == "3"
    assert render("$input.path('$.items[-1].id')", body=body) == "2"
    assert render("$input.path('$.missing[*]').size()", body=body) == "0"


def test_input_params_lookup_order_and_maps():
    # params(x): "from the path, query string, or header value (searched in that order)" [vars]
    kwargs = {
        "path": {"x": "from-path"},
        "query": {"x": "from-query", "q": "from-query"},
        "headers": {"x": "from-header", "q": "from-header", "h": "from-header"},
    }
    assert (
        render("$input.params('x')|$input.params('q')|$input.params('h')", **kwargs)
        == "from-path|from-query|from-header"
    )
    assert render("[$input.params('absent')]", **kwargs) == "[]"  # [ls; aws-rec: a missing value is ""]
    # params(): "a map of all the request parameters" with path, querystring, header [vars, examples]
    template = (
        "$input.params().path.x|$input.params().querystring.get('q')|$input.params().header.h|$input.params().size()"
    )
    assert render(template, **kwargs) == "from-path|from-query|from-header|3"
    template = "#foreach($name in $input.params().header.keySet())$name=$input.params().header.get($name);#end"
    assert render(template, **kwargs) == "x=from-header;q=from-header;h=from-header;"


# --- $util ------------------------------------------------------------------------------------
def test_parse_json_example_from_the_docs():
    # the $util.parseJson() example of [vars]
    body = json.dumps({"errorMessage": json.dumps({"key1": "var1", "key2": {"arr": [1, 2, 3]}})})
    template = """#set ($errorMessageObj = $util.parseJson($input.path('$.errorMessage')))
{
   "errorMessageObjKey2ArrVal" : $errorMessageObj.key2.arr[0]
}"""
    assert json.loads(render(template, body=body)) == {"errorMessageObjKey2ArrVal": 1}


def test_parse_json_rejects_what_is_not_json():
    with pytest.raises(MappingTemplateRenderError, match="not JSON"):
        render("$util.parseJson('{nope')")


def test_url_encode_and_decode_are_java_form_encoding():
    # application/x-www-form-urlencoded [vars] as java.net.URLEncoder writes it: . - * _ kept,
    # space +, the rest (~ included) %XX of UTF-8, é = C3 A9 [java]
    assert with_value("$util.urlEncode($v)", "a b&c=d/é~*._-") == "a+b%26c%3Dd%2F%C3%A9%7E*._-"
    assert with_value("$util.urlDecode($v)", "a+b%26c%3D%C3%A9") == "a b&c=é"
    for broken in ("%zz", "100%"):  # URLDecoder: IllegalArgumentException [java]
        with pytest.raises(MappingTemplateRenderError, match="urlDecode"):
            with_value("$util.urlDecode($v)", broken)


def test_base64_encode_and_decode():
    # RFC 4648 section 10 vectors; "é" is UTF-8 C3 A9 -> 110000 111010 1001(00) -> w 6 k = [vars, java]
    assert with_value("$util.base64Encode($v)", "foobar") == "Zm9vYmFy"
    assert with_value("$util.base64Encode($v)", "fo") == "Zm8="
    assert with_value("$util.base64Encode($v)", "é") == "w6k="
    assert with_value("$util.base64Decode($v)", "Zm9vYmFy") == "foobar"
    assert with_value("$util.base64Decode($v)", "w6k=") == "é"
    assert with_value("$util.base64Decode($v)", "w6k") == "é"  # java.util.Base64: padding optional
    with pytest.raises(MappingTemplateRenderError, match="base64Decode"):
        with_value("$util.base64Decode($v)", "not base64!")


# --- Java String.replaceAll and friends [java: Pattern, Matcher.appendReplacement, String.split] --
def test_replace_all_group_references():
    date = "2024-05-06"
    assert with_value(r"$v.replaceAll('(\d+)-(\d+)-(\d+)', '$3/$2/$1')", date) == "06/05/2024"
    assert with_value(r"$v.replaceAll('(?<y>\d{4})', '${y}!')", date) == "2024!-05-06"
    assert with_value(r"$v.replaceAll('-', '\$')", date) == "2024$05$06"
    assert with_value("$v.replaceAll('(a)', '$10')", "ab") == "a0b"  # digits only while they name a group
    assert with_value("$v.replaceFirst('-', '/')", date) == "2024/05-06"


@pytest.mark.parametrize(
    ("replacement", "message"),
    [("$", "illegal group reference"), ("$2", "no group 2"), ("${n}", "no group named"), ("x\\", "escaped is missing")],
)
def test_replace_all_bad_replacements_fail(replacement, message):
    with pytest.raises(MappingTemplateRenderError, match=message):
        with_value(f"$v.replaceAll('(a)', '{replacement}')", "a")


def test_java_regex_classes_and_dot():
    # \w is [a-zA-Z_0-9] unless UNICODE_CHARACTER_CLASS; . stops at \r as well as \n
    assert with_value(r"$v.replaceAll('\w', 'x')", "é_a1") == "éxxx"
    assert with_value("$v.replaceAll('.', 'x')", "a\rb\nc") == "x\rx\nx"
    assert with_value("$v.matches('a.c')|$v.matches('b')", "abc") == "true|false"


def test_split_drops_trailing_empty_strings():
    assert with_value("$v.split(',').size()", "a,b,,") == "2"
    assert with_value("#set($p = $v.split(','))$p.size()|$p.get(0)|$p.get(1)", ",a") == "2||a"
    assert with_value("$v.split('').size()", "abc") == "3"
    assert with_value("$v.split(';').get(0)", "no-separator") == "no-separator"


def test_string_length_counts_utf16_code_units():
    assert with_value("$v.length()|$v.substring(2)|$v.indexOf('a')", "😀a") == "3|a|2"


def test_regex_constructs_python_cannot_match_the_same_way_fail_clearly():
    with pytest.raises(MappingTemplateRenderError, match=r"\\p"):
        with_value(r"$v.replaceAll('\p{L}', 'x')", "a")


# --- $context and the overrides ---------------------------------------------------------------
def test_context_variables():
    context = {"requestId": "req-9", "authorizer": {"userId": "u-7", "n": 1, "b": True, "claims": {"sub": "s"}}}
    template = "$context.requestId $context.authorizer.userId $context.authorizer.claims.sub [$context.nope]"
    assert render(template, context=context) == "req-9 u-7 s []"
    # $context.authorizer.<key> is "the stringified value": numKey 1 -> "1", boolKey true -> "true" [vars]
    assert render("$context.authorizer.n $context.authorizer.b.length()", context=context) == "1 4"
    assert render("$stageVariables.env", stage_variables={"env": "dev"}) == "dev"


def test_template_does_not_change_the_callers_context():
    context = {"requestId": "r", "authorizer": {"userId": "u"}}
    render('#set($context.authorizer.userId = "changed")#set($context.extra = 1)', context=context)
    assert context == {"requestId": "r", "authorizer": {"userId": "u"}}


def test_response_override_status_and_headers():
    # [vars, overrides]: $context.responseOverride.status and .header.<name>
    template = "#set($context.responseOverride.status = 504)#set($context.responseOverride.header.x-request-id = $context.requestId)body"
    assert respond(template) == RenderedResponse("body", 504, {"x-request-id": "req-1"})
    assert respond("plain") == RenderedResponse("plain", None, {})
    assert respond('#set($context.responseOverride.status = "429")').status_override == 429


def test_response_override_example_from_the_docs():
    # Example 1 of [overrides]: 400 when the integration's body mentions an error
    template = """#set($inputRoot = $input.path('$'))
$input.json("$")
#if($inputRoot.toString().contains("error"))
#set($context.responseOverride.status = 400)
#end"""
    assert respond(template, body='{"error": "bad pet"}').status_override == 400
    assert respond(template, body='{"id": 1}').status_override is None


def test_response_override_twice_fails():
    # "Overrides are final ... If you try to override the same parameter multiple times, API Gateway
    # returns a 5XX response" [overrides]
    with pytest.raises(MappingTemplateRenderError, match="set twice"):
        respond("#set($context.responseOverride.status = 400)#set($context.responseOverride.status = 500)")
    with pytest.raises(MappingTemplateRenderError, match="set twice"):
        respond("#set($context.responseOverride.header.a = 1)#set($context.responseOverride.header.a = 2)")


def test_response_override_that_is_not_a_status_fails():
    with pytest.raises(MappingTemplateRenderError, match="not an HTTP status code"):
        respond('#set($context.responseOverride.status = "soon")')


def test_response_override_belongs_in_response_templates():
    with pytest.raises(MappingTemplateRenderError, match="response template"):
        render("#set($context.responseOverride.status = 500)")


# --- methods, errors, isolation ---------------------------------------------------------------
def test_method_java_lacks_is_null_and_renders_empty():
    # Velocity resolves no method -> null [vtl17]; API Gateway prints null as "" [aws-rec]
    assert with_value("[$v.noSuchMethod()][$util.noSuchFunction('x')]", "s") == "[][]"


def test_java_method_not_implemented_here_fails_loudly():
    with pytest.raises(MappingTemplateRenderError, match=r"codePointAt\(\) is a Java method"):
        with_value("$v.codePointAt(0)", "s")


@pytest.mark.parametrize(
    ("template", "where"),
    [
        ("#if($x)never closed", "line 1"),
        ("ok\nstill ok\n$util.escapeJavaScript(", "line 3"),
        ("#foreach($a in $b)x", "#end"),
        ("#macro(m)x#end", "#macro"),
        ("#evaluate($x)", "#evaluate"),
    ],
)
def test_template_that_does_not_parse_says_where(template, where):
    with pytest.raises(MappingTemplateSyntaxError, match="does not parse") as caught:
        render(template)
    assert where in str(caught.value)


def test_stock_airspeed_is_left_alone():
    assert render('#if("")yes#end') == "yes"  # Velocity 1.7: "" is true
    assert airspeed.Template('#if("")yes#end').merge({}) == ""  # airspeed itself still says false
