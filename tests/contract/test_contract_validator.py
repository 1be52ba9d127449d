"""Self-test of scripts/lib/bligate_dev/contract.py: the validator must reject what the
contract forbids and accept what it allows. Runs without a stack:

    /usr/bin/python3 -m pytest tests/contract/test_contract_validator.py

The first group uses a small OpenAPI 3.1 document written here; the second uses the real
bundle (openapi/build/*.yaml from scripts/openapi-build) and is skipped when it is missing.
"""
import json
import os
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "scripts", "lib"))

from bligate_dev.contract import Contract, ContractError  # noqa: E402

MINI = textwrap.dedent("""\
    openapi: 3.1.0
    info: {title: mini, version: '1'}
    x-problem-registry:
      not-found: {status: 404, title: No such resource}
      method-not-allowed: {status: 405, title: Not allowed}
      forbidden: {status: 403, title: Forbidden}
    paths:
      /v1/things:
        post:
          responses:
            '201':
              description: created
              headers:
                X-Request-Id: {$ref: '#/components/headers/X-Request-Id'}
                Location: {required: true, schema: {type: string}}
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Thing'}
            '429':
              description: slow down
              headers:
                Retry-After: {required: true, schema: {type: integer, minimum: 0}}
              content:
                application/problem+json:
                  schema: {$ref: '#/components/schemas/Problem'}
      /v1/things/{id}:
        get:
          responses:
            '200':
              description: ok
              headers:
                X-Request-Id: {$ref: '#/components/headers/X-Request-Id'}
              content:
                application/json:
                  schema: {$ref: '#/components/schemas/Thing'}
            '404':
              $ref: '#/components/responses/NotFound'
        delete:
          responses:
            '204': {description: gone}
      /v1/things/special:
        get:
          responses:
            '200':
              description: the literal path wins over /v1/things/{id}
              content:
                text/plain:
                  schema: {type: string}
    components:
      headers:
        X-Request-Id:
          required: true
          schema: {type: string, pattern: '^[A-Za-z0-9._-]{1,64}$'}
      schemas:
        Uuid: {type: string, format: uuid}
        Thing:
          type: object
          required: [id, kind, created_at, parent_id]
          properties:
            id: {$ref: '#/components/schemas/Uuid'}
            kind: {type: string, enum: [a, b]}
            created_at: {type: string, format: date-time}
            parent_id:
              oneOf:
                - {$ref: '#/components/schemas/Uuid'}
                - {type: 'null'}
        Problem:
          type: object
          required: [type, title, status, code]
          properties:
            type: {type: string}
            title: {type: string}
            status: {type: integer}
            code: {type: string}
            request_id: {type: string}
            instance: {type: string}
      responses:
        NotFound:
          description: no such thing
          x-problem-codes: [not-found]
          content:
            application/problem+json:
              schema: {$ref: '#/components/schemas/Problem'}
        MethodNotAllowed:
          description: wrong method
          x-problem-codes: [method-not-allowed]
          headers:
            Allow: {required: true, schema: {type: string}}
          content:
            application/problem+json:
              schema: {$ref: '#/components/schemas/Problem'}
    """)

ID = "0b7f6c1e-3f5d-4c8a-9a51-2c7e0d9b1f42"
GOOD = {"id": ID, "kind": "a", "created_at": "2026-11-26T21:34:22Z", "parent_id": None, "extra": "allowed"}
JSON = {"Content-Type": "application/json", "X-Request-Id": "req-1"}
PROBLEM = {"Content-Type": "application/problem+json", "X-Request-Id": "req-1"}


def body(obj):
    return json.dumps(obj).encode()


def problem(code, status, path, **more):
    return body({"type": f"https://bligate.example/problems/{code}", "title": "t", "status": status,
                 "code": code, "instance": path, "request_id": "req-1", **more})


@pytest.fixture
def contract(tmp_path):
    p = tmp_path / "mini.yaml"
    p.write_text(MINI)
    return Contract(str(p))


# ---------- accepts ----------

def test_accepts_a_good_response(contract):
    got = contract.validate("GET", f"/v1/things/{ID}?x=1", 200, JSON, body(GOOD))
    assert got["id"] == ID


def test_accepts_documented_problem(contract):
    path = f"/v1/things/{ID}"
    contract.validate("GET", path, 404, PROBLEM, problem("not-found", 404, path))


def test_accepts_empty_204_and_header_checks(contract):
    contract.validate("DELETE", f"/v1/things/{ID}", 204, {"X-Request-Id": "r"}, b"")
    contract.validate("POST", "/v1/things", 201, {**JSON, "Location": f"/v1/things/{ID}"}, body(GOOD))


def test_literal_path_beats_template(contract):
    contract.validate("GET", "/v1/things/special", 200, {"Content-Type": "text/plain; charset=utf-8"}, b"hi")


def test_405_on_a_documented_path(contract):
    path = "/v1/things"
    contract.validate("PUT", path, 405, {**PROBLEM, "Allow": "POST"}, problem("method-not-allowed", 405, path))
    with pytest.raises(ContractError, match="Allow"):
        contract.validate("PUT", path, 405, PROBLEM, problem("method-not-allowed", 405, path))


# ---------- rejects ----------

def test_rejects_undocumented_status(contract):
    with pytest.raises(ContractError, match="status 500 is not documented"):
        contract.validate("GET", f"/v1/things/{ID}", 500, JSON, body(GOOD))


def test_rejects_missing_required_field(contract):
    bad = dict(GOOD)
    del bad["kind"]
    with pytest.raises(ContractError, match="'kind' is a required property"):
        contract.validate("GET", f"/v1/things/{ID}", 200, JSON, body(bad))


def test_rejects_wrong_type(contract):
    with pytest.raises(ContractError, match=r"\$\.kind"):
        contract.validate("GET", f"/v1/things/{ID}", 200, JSON, body({**GOOD, "kind": 7}))


def test_rejects_bad_formats_and_enums(contract):
    for bad in ({"id": "not-a-uuid"}, {"created_at": "2026-11-26 21:34"}, {"kind": "c"}, {"parent_id": 5}):
        with pytest.raises(ContractError):
            contract.validate("GET", f"/v1/things/{ID}", 200, JSON, body({**GOOD, **bad}))


def test_rejects_undocumented_path(contract):
    with pytest.raises(ContractError, match="undocumented path"):
        contract.validate("GET", "/v1/nothing", 200, JSON, body(GOOD))


def test_rejects_undocumented_method(contract):
    with pytest.raises(ContractError, match="not documented on /v1/things/{id}"):
        contract.validate("PATCH", f"/v1/things/{ID}", 200, JSON, body(GOOD))


def test_rejects_wrong_content_type(contract):
    with pytest.raises(ContractError, match="Content-Type 'text/html' is not documented"):
        contract.validate("GET", f"/v1/things/{ID}", 200, {**JSON, "Content-Type": "text/html"}, body(GOOD))
    with pytest.raises(ContractError, match="no Content-Type"):
        contract.validate("GET", f"/v1/things/{ID}", 200, {"X-Request-Id": "r"}, body(GOOD))


def test_rejects_missing_required_header(contract):
    with pytest.raises(ContractError, match="required header Location is missing"):
        contract.validate("POST", "/v1/things", 201, JSON, body(GOOD))
    with pytest.raises(ContractError, match="X-Request-Id"):
        contract.validate("GET", f"/v1/things/{ID}", 200, {"Content-Type": "application/json"}, body(GOOD))


def test_rejects_bad_header_value(contract):
    h = {**PROBLEM, "Retry-After": "soon"}
    with pytest.raises(ContractError, match="Retry-After"):
        contract.validate("POST", "/v1/things", 429, h, problem("forbidden", 429, "/v1/things"))


def test_rejects_body_mismatch_with_documentation(contract):
    with pytest.raises(ContractError, match="no body is documented"):
        contract.validate("DELETE", f"/v1/things/{ID}", 204, JSON, b"{}")
    with pytest.raises(ContractError, match="none came"):
        contract.validate("GET", f"/v1/things/{ID}", 200, JSON, b"")
    with pytest.raises(ContractError, match="not valid JSON"):
        contract.validate("GET", f"/v1/things/{ID}", 200, JSON, b'{"id": 1, "id": 2}')


def test_rejects_inconsistent_problems(contract):
    path = f"/v1/things/{ID}"
    with pytest.raises(ContractError, match="not documented for this response"):
        contract.validate("GET", path, 404, PROBLEM, problem("forbidden", 404, path))
    with pytest.raises(ContractError, match="differs from the HTTP status"):
        contract.validate("GET", path, 404, PROBLEM, problem("not-found", 400, path))
    with pytest.raises(ContractError, match="request_id"):
        contract.validate("GET", path, 404, {**PROBLEM, "X-Request-Id": "other"}, problem("not-found", 404, path))
    with pytest.raises(ContractError, match="instance"):
        contract.validate("GET", path, 404, PROBLEM, problem("not-found", 404, "/elsewhere"))


def test_records_exercised_operations(contract):
    assert "GET /v1/things/{id}" in contract.report_unexercised()
    contract.validate("GET", f"/v1/things/{ID}", 200, JSON, body(GOOD))
    left = contract.report_unexercised()
    assert "GET /v1/things/{id}" not in left
    assert left == ["DELETE /v1/things/{id}", "GET /v1/things/special", "POST /v1/things"]
    assert ("GET", "/v1/things/{id}", 404) in contract.unexercised_responses()
    assert ("GET", "/v1/things/{id}", 200) not in contract.unexercised_responses()
    # A rejected response is not counted.
    with pytest.raises(ContractError):
        contract.validate("POST", "/v1/things", 500, JSON, b"{}")
    assert "POST /v1/things" in contract.report_unexercised()


# ---------- the real contract ----------

BUILD = os.path.join(ROOT, "openapi", "build")
needs_bundle = pytest.mark.skipif(not os.path.exists(os.path.join(BUILD, "openapi.yaml")),
                                  reason="run scripts/openapi-build first")
COMMON = {"X-Request-Id": "req-1", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


@pytest.fixture(scope="module")
def real():
    return Contract.from_repo(ROOT)


@needs_bundle
def test_real_unit_and_problem(real):
    unit = {"id": ID, "code": "SW-2", "name": "Social Assistance Section", "kind": "section", "parent_id": None,
            "created_at": "2026-11-26T21:34:22Z"}
    h = {**COMMON, "Content-Type": "application/json"}
    real.validate("GET", f"/v1/units/{ID}", 200, h, body(unit))
    real.validate("GET", "/v1/units?limit=2", 200, h, body({"items": [unit], "next_cursor": None}))
    with pytest.raises(ContractError, match="kind"):
        real.validate("GET", f"/v1/units/{ID}", 200, h, body({**unit, "kind": "department"}))
    with pytest.raises(ContractError, match="Cache-Control"):
        real.validate("GET", f"/v1/units/{ID}", 200, {**h, "Cache-Control": "max-age=60"}, body(unit))
    p = {**COMMON, "Content-Type": "application/problem+json", "WWW-Authenticate": "Bearer"}
    real.validate("GET", "/v1/units", 401, p, problem("unauthenticated", 401, "/v1/units"))
    with pytest.raises(ContractError, match="not documented for this response"):
        real.validate("GET", "/v1/units", 401, p, problem("malformed-json", 401, "/v1/units"))
    # Unrouted paths: the generic problem check, against the registry.
    real.validate_problem(404, p, problem("not-found", 404, "/nowhere"), path="/nowhere")
    with pytest.raises(ContractError, match="registered with status 400"):
        real.validate_problem(401, p, problem("malformed-json", 401, "/nowhere"), path="/nowhere")
    with pytest.raises(ContractError, match="not in the registry"):
        real.validate_problem(404, p, problem("no-such-code", 404, "/nowhere"), path="/nowhere")


@needs_bundle
def test_real_internal_and_global_responses(real):
    h = {**COMMON, "Content-Type": "application/json"}
    st = {"session_id": ID, "account_id": ID, "name": "王小明", "live": False, "reason": "idle",
          "account_status": "active",
          "unit_id": ID, "roles": ["querier"], "idle_expires_at": "2026-11-26T21:44:22Z",
          "expires_at": "2026-11-27T05:34:22Z"}
    real.validate("GET", f"/internal/sessions/{ID}", 200, h, body(st))
    with pytest.raises(ContractError):
        real.validate("GET", f"/internal/sessions/{ID}", 200, h, body({**st, "reason": "bored"}))
    p = {**COMMON, "Content-Type": "application/problem+json", "Allow": "GET, POST"}
    real.validate("PUT", "/v1/units", 405, p, problem("method-not-allowed", 405, "/v1/units"))
    assert "GET /metrics" in real.operations() or ("GET", "/metrics") in real.operations()


@needs_bundle
def test_real_every_registry_code_is_documented_on_some_response(real):
    """Every code in problems.def is either in an operation's x-problem-codes or a global response."""
    used = set()
    for _, doc in real.docs:
        def walk(n):
            if isinstance(n, dict):
                used.update(n.get("x-problem-codes") or [])
                for v in n.values():
                    walk(v)
            elif isinstance(n, list):
                for v in n:
                    walk(v)
        walk({k: v for k, v in doc.items() if k != "x-problem-registry"})
    registry = set(real._registry)
    assert registry - used == set(), "codes in problems.def that no response documents"
    assert used <= registry
