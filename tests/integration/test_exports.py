"""The auditor's export formats (issue 8): versioned, with standalone JSON Schemas under
openapi/export/ cut from the contract (scripts/export-schemas); real exports validate against
them, with an implementation independent of the service (python-jsonschema)."""

import json
import subprocess

import jsonschema

from conftest import REPO
from test_oversight_reviews import fresh_year


def schema(name):
    with open(REPO / "openapi" / "export" / f"{name}.schema.json", encoding="utf-8") as f:
        doc = json.load(f)
    jsonschema.Draft202012Validator.check_schema(doc)
    return jsonschema.Draft202012Validator(doc)


def test_the_schemas_follow_the_contract():
    r = subprocess.run([str(REPO / "scripts" / "export-schemas"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_an_event_export_validates(login):
    c = login("ethics1")
    r = c.get("/v1/audit/events", headers={"Accept": "application/x-ndjson"})
    assert r.status_code == 200
    lines = [json.loads(x) for x in r.text.splitlines()]
    assert lines
    v = schema("audit-events-v1")
    for line in lines:
        v.validate(line)
    bad = dict(lines[0], leaf_hash="not a hash")
    assert not v.is_valid(bad)


def test_a_quarterly_review_export_validates(admin):
    year = fresh_year(admin)
    review = admin.call("POST", "/v1/audit/quarterly-reviews", status=201, json={"year": year, "quarter": 1})
    doc = admin.call("GET", f"/v1/audit/quarterly-reviews/{review['id']}/export")
    assert doc["format"] == "bligate.quarterly-review-export/1"
    v = schema("quarterly-review-export-v1")
    v.validate(doc)
    assert not v.is_valid(dict(doc, format="bligate.quarterly-review-export/2"))
