"""The OpenAPI schema integrators read: valid, complete, and true to the real responses."""

from __future__ import annotations

import io
import re

import jsonschema
import pytest
from django.core.management import call_command

from sales.example_bodies import APPOINTMENT_DATA

pytestmark = pytest.mark.django_db


@pytest.fixture
def schema(anon_client):
    response = anon_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    import json

    return json.loads(response.content)


def to_json_schema(node):
    """OpenAPI 3.0 `nullable: true` -> JSON Schema's null type, recursively."""
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: to_json_schema(value) for key, value in node.items()}
    if node.pop("nullable", False):
        if "type" in node:
            node["type"] = [node["type"], "null"]
        else:
            return {"anyOf": [node, {"type": "null"}]}
    return node


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time")
def is_rfc3339_date_time(value):
    # jsonschema checks date-time only with an optional package; schemathesis always does.
    return not isinstance(value, str) or bool(
        re.fullmatch(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})", value)
    )


def validate(schema, component, instance):
    """Validate `instance` against `#/components/schemas/<component>` with format checks on."""
    document = {"$ref": f"#/components/schemas/{component}", "components": to_json_schema(schema["components"])}
    jsonschema.validate(instance, document, format_checker=FORMATS)


def test_schema_generation_has_no_warnings():
    out = io.StringIO()
    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)
    assert "openapi: 3" in out.getvalue()


def test_docs_pages_are_served_without_authentication(anon_client):
    assert anon_client.get("/api/docs/").status_code == 200
    assert anon_client.get("/api/redoc/").status_code == 200


def test_every_operation_documents_its_errors_in_the_contract_shape(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            codes = set(operation["responses"])
            if path.startswith("/health/live"):
                assert codes == {"200"}  # answers whenever the process does
                continue
            if path.startswith("/health"):
                assert "503" in codes
                continue
            if path.startswith("/auth/signin"):
                assert {"400", "401", "429"} <= codes
                continue
            if "/open/{token}" in path:
                # The signed link: no token to miss; a bad or expired link is a 403.
                assert {"403", "404"} <= codes and "security" not in operation, (method, path)
                continue
            assert "401" in codes, (method, path)
            if "{opportunity_id}" in path:
                assert "404" in codes, (method, path)
            if method in ("post", "put"):
                assert "400" in codes, (method, path)
            error = operation["responses"]["401"]["content"]["application/json"]["schema"]
            assert error == {"$ref": "#/components/schemas/Error"}
    assert schema["components"]["securitySchemes"]["jwtAuth"]["scheme"] == "bearer"


def test_process_update_documents_every_field_and_the_section_8_examples(schema):
    operation = schema["paths"]["/opportunity/update-opportunity-procces/{opportunity_id}/"]["put"]
    body = operation["requestBody"]["content"]["application/json"]
    assert sorted(example["summary"] for example in body["examples"].values()) == [
        "8.1 Actualizar datos y cita (sin cerrar)",
        "8.2 Cierre ganado con factura directa",
        "8.3 Cierre ganado con O.S",
    ]
    assert body["examples"]["8.3CierreGanadoConO.S"]["value"]["cOrdenesServicio"] == [456]
    properties = schema["components"]["schemas"]["ProcessUpdateInputRequest"]["properties"]
    for field in (
        "cLastNameFather",
        "cClinicHistory",
        "cAppointment",
        "cDateReservation",
        "reservationId",
        "cFacturas",
        "cOrdenesServicio",
        "cOrdenesServicioMetadata",
    ):
        assert field in properties
        assert properties[field].get("nullable") is True, field
    assert properties["reservationId"]["maximum"] == 2**31 - 1
    assert properties["cDateReservation"]["format"] == "date"


def test_ignored_fields_are_documented_in_the_process_update_and_create_responses(schema):
    for path, method, status in (
        ("/opportunity/update-opportunity-procces/{opportunity_id}/", "put", "200"),
        ("/opportunity/", "post", "201"),
    ):
        ref = schema["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]["$ref"]
        component = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert component["properties"]["ignoredFields"]["type"] == "array", (path, component)
        assert component["properties"]["ignoredFields"]["items"]["type"] == "string"
        assert "ignoredFields" in component["required"], path
        assert component["properties"]["ignoredFields"]["description"].startswith("Claves de primer nivel")


def test_real_responses_conform_to_the_schema(schema, api_client, make_opportunity, put_process):
    """Regression of schemathesis' first finding: `yyyy-MM-dd HH:mm:ss` is not RFC 3339
    `date-time`, so the schema must describe it as a patterned string."""
    opportunity = make_opportunity()
    body = put_process(opportunity.pk, {**APPOINTMENT_DATA, "reservationId": 7}).json()
    validate(schema, "ProcessUpdateResponse", body)
    validate(
        schema,
        "OpportunityCreateOutput",
        api_client.post("/opportunity", {"name": "Venta", "nmae": "x"}, format="json").json(),
    )
    validate(schema, "OpportunityOutput", api_client.get(f"/opportunity/{opportunity.pk}").json())
    for item in api_client.get(f"/opportunity/{opportunity.pk}/meetings").json():
        validate(schema, "MeetingOutput", item)
    for item in api_client.get(f"/opportunity/{opportunity.pk}/action-history").json():
        validate(schema, "ActionHistoryOutput", item)
    validate(schema, "Error", api_client.get("/opportunity/00000000000000000").json())


# --- What the schema says to people: each example belongs to its operation, all of it in Spanish.

ENGLISH_WORDS = {
    "the",
    "of",
    "and",
    "is",
    "are",
    "with",
    "for",
    "to",
    "from",
    "an",
    "its",
    "when",
    "this",
    "that",
    "be",
    "by",
    "or",
    "not",
    "in",
    "on",
    "as",
    "one",
    "body",
    "bodies",
    "request",
    "seconds",
    "record",
    "returns",
    "needs",
    "newest",
    "invoice",
    "access",
    "required",
    "attached",
    "missing",
    "invalid",
    "found",
}
SPANISH_WORDS = {
    "de",
    "la",
    "el",
    "los",
    "las",
    "del",
    "y",
    "o",
    "u",
    "en",
    "un",
    "una",
    "con",
    "sin",
    "para",
    "por",
    "que",
    "se",
    "es",
    "no",
    "su",
    "al",
    "lo",
    "si",
}
# Code spans, quoted values, placeholders, URLs, identifiers and hyphenated names (invoice-mifact).
CODE = re.compile(
    r"`[^`]*`|\"[^\"]*\"|<[^>]*>|\{[^}]*\}|https?://\S+|\b\w*[a-z][A-Z_]\w*\b|\b[a-z]+_[a-z_]+\b"
    r"|\b\w+(?:-\w+)+\b"
)


def texts_for_people(schema):
    """(where, text) of every title, description and summary of the schema."""
    found = [("info.title", schema["info"]["title"]), ("info.description", schema["info"]["description"])]
    found += [(f"tag {tag['name']}", tag["description"]) for tag in schema.get("tags", [])]

    def walk(node, where):
        if isinstance(node, dict):
            if "enum" in node:
                return  # the generated list of values and their labels
            for key, value in node.items():
                if key in ("title", "description", "summary") and isinstance(value, str):
                    found.append((f"{where}.{key}", value))
                else:
                    walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{where}[{index}]")

    walk(schema["paths"], "paths")
    walk(schema["components"], "components")
    return found


def not_spanish(text):
    """Why `text` does not read as Spanish, or None. Code, identifiers and quoted values aside."""
    words = re.findall(r"[^\W\d_]+", CODE.sub(" ", text).lower())
    english = sorted(set(words) & ENGLISH_WORDS)
    if english:
        return f"English words {english}"
    if len(words) >= 4 and not set(words) & SPANISH_WORDS:
        return "no Spanish word"
    return None


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def resolve(schema, node):
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def accepted_fields(schema, operation):
    """The body keys and path parameters an operation accepts."""
    fields = {parameter["name"] for parameter in operation.get("parameters", [])}
    for content in operation.get("requestBody", {}).get("content", {}).values():
        fields |= set(resolve(schema, content["schema"]).get("properties", {}))
    return fields


def test_the_schema_speaks_spanish(schema):
    problems = [(where, text, why) for where, text in texts_for_people(schema) if (why := not_spanish(text))]
    assert problems == [], "\n".join(map(str, problems))
    assert not_spanish("Returns the opportunity of the body") and not_spanish("Bodies over the limit: error")


def test_every_response_has_its_own_specific_description(schema):
    for name, operation in operations(schema):
        descriptions = {code: response["description"] for code, response in operation["responses"].items()}
        assert all(text and text.strip() != "Error" for text in descriptions.values()), (name, descriptions)
        assert len(set(descriptions.values())) == len(descriptions), (name, descriptions)
        if "413" in descriptions:
            assert descriptions["413"].startswith("Cuerpo demasiado grande"), name


def test_every_example_belongs_to_its_operation(schema):
    everyone = set().union(*(accepted_fields(schema, operation) for _, operation in operations(schema)))
    error_schema = {"$ref": "#/components/schemas/Error", "components": to_json_schema(schema["components"])}
    for name, operation in operations(schema):
        accepted = accepted_fields(schema, operation)
        needs_token = any(requirement for requirement in operation.get("security", []))
        for content in operation.get("requestBody", {}).get("content", {}).values():
            for example in content.get("examples", {}).values():
                assert set(example["value"]) <= accepted, (name, example["summary"])
        for code, response in operation["responses"].items():
            if not code.startswith(("4", "5")):
                continue
            examples = response["content"]["application/json"].get("examples", {})
            assert examples, (name, code, "an error response without an example")
            for example in examples.values():
                value = example["value"]
                where = (name, code, example["summary"])
                jsonschema.validate(value, error_schema)
                assert value["statusCode"] == int(code), where
                named = {key.split(".")[0] for key in value.get("errors", {})} - {"non_field_errors"}
                named |= set(re.findall(r"\w+", value["message"])) & everyone
                assert named <= accepted, (where, named - accepted)
                if not needs_token:
                    assert not re.search(r"Bearer|Authorization|[Tt]oken", value["message"]), where


def operation(schema, operation_id):
    return next(
        op for path in schema["paths"].values() for op in path.values() if op.get("operationId") == operation_id
    )


def test_the_safe_retry_headers_and_answers_are_documented(schema):
    """docs/api.md "Safe retries": what schema-driven clients and tests rely on."""
    create, detail, put = (
        operation(schema, name) for name in ("opportunity_create", "opportunity_retrieve", "opportunity_update_process")
    )

    def headers(op):
        return {p["name"] for p in op["parameters"] if p["in"] == "header"}

    assert headers(create) == {"Idempotency-Key"}
    assert headers(put) == {"Idempotency-Key", "If-Match"}
    assert headers(detail) == {"If-None-Match"}
    assert {"201", "409", "422"} <= set(create["responses"])
    assert {"200", "409", "412", "422"} <= set(put["responses"])
    assert "304" in detail["responses"] and "content" not in detail["responses"]["304"]
    assert set(create["responses"]["201"]["headers"]) == {"ETag", "Idempotent-Replayed"}
    assert set(put["responses"]["412"]["headers"]) == {"ETag"}
    assert set(put["responses"]["200"]["headers"]) == {"ETag", "Idempotent-Replayed"}
    assert set(detail["responses"]["304"]["headers"]) == {"ETag"}
    assert set(put["responses"]["409"]["headers"]) == {"Retry-After"}


def test_the_created_opportunity_is_linked_to_every_operation_that_takes_one(schema):
    taking_an_opportunity = {
        op["operationId"]
        for path, item in schema["paths"].items()
        if "{opportunity_id}" in path
        for op in item.values()
    }
    links = operation(schema, "opportunity_create")["responses"]["201"]["links"]
    assert set(links) == taking_an_opportunity and len(links) == 8
    for name, link in links.items():
        assert link["operationId"] == name and link["parameters"]["opportunity_id"] == "$response.body#/id"
    assert links["opportunity_update_process"]["parameters"]["header.If-Match"] == "$response.header.ETag"


def test_the_safe_retry_answers_conform_to_the_schema(schema, api_client):
    created = api_client.post("/opportunity", {"name": "Venta"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    url = f"/opportunity/update-opportunity-procces/{created.json()['id']}"
    stale = api_client.put(url, {"cPatientsname": "Rosa"}, format="json", HTTP_IF_MATCH='"0"')
    reused = api_client.post("/opportunity", {"name": "Otra"}, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    assert (stale.status_code, reused.status_code) == (412, 422)
    for answer in (stale, reused):
        validate(schema, "Error", answer.json())
