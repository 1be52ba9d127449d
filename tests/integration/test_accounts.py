"""Units, accounts and certificates (issue 2): the permission administrator manages them,
others are refused, bad input gets a problem naming the field, and per-object access holds."""

import json

import requests

from conftest import devpki, new_national_id, problem


def test_non_admin_cannot_create_accounts_or_units(login, demo):
    c = login("querier1")
    body = {"name": "x", "national_id": new_national_id(), "unit_id": demo["querier1"]["unit_id"],
            "title": "t", "roles": []}
    problem(c.post("/v1/accounts", json=body), 403, "forbidden")
    problem(c.post("/v1/units", json={"code": "X1", "name": "x", "kind": "section"}), 403, "forbidden")
    sup = login("supervisor1")
    problem(sup.post("/v1/accounts", json=body), 403, "forbidden")


def test_create_read_update_deactivate(admin, demo, client, stack, tmp_path):
    nid = new_national_id()
    body = {"name": "王小明", "national_id": nid, "unit_id": demo["querier1"]["unit_id"], "title": "社工員",
            "roles": ["querier"], "phone": "07-1234567", "email": "ming@example.gov.tw", "egov_account": "ming01"}
    r = admin.post("/v1/accounts", json=body)
    assert r.status_code == 201, r.text
    acc = r.json()
    assert r.headers["Location"] == f"/v1/accounts/{acc['id']}"
    assert acc["national_id"] == nid and acc["national_id_masked"] == nid[:3] + "****" + nid[7:]
    assert acc["status"] == "active" and acc["roles"] == ["querier"]
    assert admin.call("GET", f"/v1/accounts/{acc['id']}")["email"] == "ming@example.gov.tw"
    # the same national ID twice
    problem(admin.post("/v1/accounts", json=body), 409, "national-id-taken")
    up = admin.call("PATCH", f"/v1/accounts/{acc['id']}", json={"title": "督導", "phone": "07-7654321"})
    assert up["title"] == "督導" and up["name"] == "王小明" and up["roles"] == ["querier"]
    # the holder signs in with a certificate naming them (Chinese CN)
    f = devpki.issue_user(stack["PKI"], "王小明", nid, str(tmp_path / "ming"))
    admin.call("POST", f"/v1/accounts/{acc['id']}/certificates", status=201,
               json={"certificate": open(f["cert"]).read()})
    me = client()
    me.login(f["cert"], f["key"])
    assert me.me()["account"]["national_id"] == nid
    out = admin.call("POST", f"/v1/accounts/{acc['id']}/deactivate", json={"reason": "transferred out"})
    assert out["status"] == "inactive"
    problem(me.get("/v1/auth/me"), 401, "session-ended")
    problem(admin.post(f"/v1/accounts/{acc['id']}/deactivate", json={"reason": "again"}), 409, "conflict")
    assert all(c["status"] == "disabled"
               for c in admin.call("GET", f"/v1/accounts/{acc['id']}/certificates")["items"])


def test_invalid_national_id_is_named(admin, demo):
    body = {"name": "x", "national_id": "A123456788", "unit_id": demo["querier1"]["unit_id"], "title": "t"}
    b = problem(admin.post("/v1/accounts", json=body), 400, "validation-failed")
    assert [e["field"] for e in b["errors"]] == ["national_id"]
    body["national_id"] = "a123456789"
    b = problem(admin.post("/v1/accounts", json=body), 400, "validation-failed")
    assert b["errors"][0]["field"] == "national_id"


def test_unknown_field_is_named(admin, demo):
    body = {"name": "x", "national_id": new_national_id(), "unit_id": demo["querier1"]["unit_id"], "title": "t",
            "salary": 1}
    b = problem(admin.post("/v1/accounts", json=body), 400, "unknown-field")
    assert "salary" in b["detail"] and b["errors"][0]["field"] == "salary"


def test_malformed_json(admin):
    r = admin.post("/v1/accounts", data=b'{"name": "x",', headers={"Content-Type": "application/json"})
    problem(r, 400, "malformed-json")
    r = admin.post("/v1/accounts", data=b'{"name": "x", "name": "y"}', headers={"Content-Type": "application/json"})
    problem(r, 400, "malformed-json")
    r = admin.post("/v1/accounts", data=b'[1,2]', headers={"Content-Type": "application/json"})
    problem(r, 400, "malformed-json")


def test_wrong_media_type(admin):
    problem(admin.post("/v1/accounts", data=b"name=x", headers={"Content-Type": "text/plain"}), 415,
            "unsupported-media-type")


def test_two_megabyte_body(admin):
    big = json.dumps({"name": "x" * (2 * 1024 * 1024)})
    problem(admin.post("/v1/accounts", data=big, headers={"Content-Type": "application/json"}), 413,
            "body-too-large")


def test_unknown_unit_and_second_permission_admin(admin, demo):
    body = {"name": "x", "national_id": new_national_id(), "unit_id": "00000000-0000-4000-8000-000000000000",
            "title": "t"}
    problem(admin.post("/v1/accounts", json=body), 422, "unit-unknown")
    body.update(unit_id=demo["permadmin"]["unit_id"], roles=["permission_admin"])
    problem(admin.post("/v1/accounts", json=body), 409, "role-holder-exists")


def test_the_permission_administrator_does_not_change_their_own_duties(admin, demo, login):
    """Rules 2 and 7: the administrator approves everyone's permissions, so does not give
    themselves a supervisor's role (to decide a Form 1's first step too), another unit or title,
    nor drop the role and leave the bureau without one; the handover moves it."""
    me = demo["permadmin"]["account_id"]
    for change in ({"roles": ["permission_admin", "it_staff", "supervisor"]}, {"roles": ["it_staff"]},
                   {"unit_id": demo["supervisor1"]["unit_id"]}, {"title": "科長"}):
        problem(admin.patch(f"/v1/accounts/{me}", json=change), 403, "forbidden")
        # the same id in upper case is the same account (PostgreSQL reads a uuid in any case)
        problem(admin.patch(f"/v1/accounts/{me.upper()}", json=change), 403, "forbidden")
    problem(admin.post(f"/v1/accounts/{me.upper()}/deactivate", json={"reason": "leaving"}), 409, "conflict")
    mine = admin.call("GET", f"/v1/accounts/{me}")
    assert sorted(mine["roles"]) == ["it_staff", "permission_admin"] and mine["unit_id"] == demo["permadmin"]["unit_id"]
    # the rest of their own record, like anyone's, and the roles stay (a PATCH without roles
    # once emptied them)
    done = admin.call("PATCH", f"/v1/accounts/{me}", json={"phone": "02-2720-8889"})
    assert done["phone"] == "02-2720-8889" and sorted(done["roles"]) == ["it_staff", "permission_admin"]


def test_object_level_reads(login, demo):
    q1 = login("querier1")
    assert q1.call("GET", f"/v1/accounts/{demo['querier1']['account_id']}")["name"] == "querier1"
    problem(q1.get(f"/v1/accounts/{demo['querier2']['account_id']}"), 404, "not-found")
    problem(q1.get("/v1/accounts"), 403, "forbidden")
    # another's full national ID is never shown to a supervisor
    s1 = login("supervisor1")
    other = s1.call("GET", f"/v1/accounts/{demo['querier1']['account_id']}")
    assert "national_id" not in other and "****" in other["national_id_masked"]
    problem(s1.get(f"/v1/accounts/{demo['querier2']['account_id']}"), 404, "not-found")
    listed = s1.call("GET", "/v1/accounts")["items"]
    assert listed and all(a["unit_id"] == demo["supervisor1"]["unit_id"] for a in listed)
    problem(s1.get("/v1/accounts", params={"unit_id": demo["supervisor2"]["unit_id"]}), 403, "forbidden")


def test_pagination(admin):
    seen, cursor = [], None
    while True:
        params = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        page = admin.call("GET", "/v1/accounts", params=params)
        assert len(page["items"]) <= 3
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) >= 13
    problem(admin.get("/v1/accounts", params={"limit": 0}), 400, "bad-query-parameter")
    problem(admin.get("/v1/accounts", params={"cursor": "garbage"}), 400, "bad-cursor")


def test_units(admin, login):
    code = "T-" + new_national_id()[:6]
    u = admin.call("POST", "/v1/units", status=201, json={"code": code, "name": "測試科", "kind": "section"})
    assert admin.call("GET", f"/v1/units/{u['id']}")["code"] == code
    problem(admin.post("/v1/units", json={"code": code, "name": "again", "kind": "section"}), 409, "unit-code-taken")
    problem(admin.post("/v1/units", json={"code": "X", "name": "x", "kind": "club"}), 400, "validation-failed")
    q = login("querier1")
    assert any(x["id"] == u["id"] for x in q.items("/v1/units"))
    problem(q.get("/v1/units/00000000-0000-4000-8000-000000000000"), 404, "not-found")


def test_certificate_registration_refusals(admin, person, stack, tmp_path):
    p = person(register=False)
    url = f"/v1/accounts/{p['id']}/certificates"
    other = devpki.issue_user(stack["PKI"], "someone-else", p["national_id"], str(tmp_path / "else"))
    problem(admin.post(url, json={"certificate": open(other["cert"]).read()}), 422, "certificate-holder-mismatch")
    digits = devpki.issue_user(stack["PKI"], p["name"], p["national_id"], str(tmp_path / "d"), id_last4="0000"
                               if not p["national_id"].endswith("0000") else "1111")
    problem(admin.post(url, json={"certificate": open(digits["cert"]).read()}), 422, "certificate-holder-mismatch")
    untrusted = devpki.issue_user(stack["PKI"], p["name"], p["national_id"], str(tmp_path / "u"), issuer="untrusted")
    problem(admin.post(url, json={"certificate": open(untrusted["cert"]).read()}), 401, "certificate-untrusted")
    problem(admin.post(url, json={"certificate": "not a certificate"}), 400, "validation-failed")
    good = open(p["cert"]).read()
    admin.call("POST", url, status=201, json={"certificate": good})
    problem(admin.post(url, json={"certificate": good}), 409, "certificate-already-registered")


def test_method_not_allowed_and_unknown_path(admin):
    r = admin.request("PUT", "/v1/accounts")
    problem(r, 405, "method-not-allowed")
    assert "GET" in r.headers["Allow"] and "POST" in r.headers["Allow"]
    problem(admin.get("/v1/accounts/not-a-uuid"), 404, "not-found")
