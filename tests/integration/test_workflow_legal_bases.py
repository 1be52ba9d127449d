"""Legal bases (issue 4): the seeded social-welfare laws with the items each may justify, read
by all staff, added to by the permission administrator only. Every response is checked
against the contract."""

import uuid

from conftest import problem
from workflow_helpers import events_about, secret

SEEDED = {
    "PUBLIC-ASSISTANCE": ("社會救助法", {"C0101", "B0101", "B0201", "B0301", "P0301", "N0101", "T0101", "B0401", "P0401"}),
    "DISABILITY-RIGHTS": ("身心障礙者權益保障法", {"C0101", "B0101", "B0201", "B0401", "P0301", "N0101"}),
    "SENIOR-WELFARE": ("老人福利法", {"C0101", "B0101", "B0201", "B0401", "N0101", "T0101", "P0401"}),
    "SPECIAL-FAMILIES": ("特殊境遇家庭扶助條例", {"C0101", "B0101", "B0201", "B0301", "P0301", "N0101"}),
    "CHILD-YOUTH-WELFARE": ("兒童及少年福利與權益保障法", {"C0101", "B0101", "B0201", "P0301"}),
    "NATIONAL-PENSION": ("國民年金法", {"C0101", "N0101", "B0401", "T0101"}),
    "DOMESTIC-VIOLENCE": ("家庭暴力防治法", {"C0101", "P0301"}),
}


def test_seeded_laws_and_their_items(login):
    c = login("querier1")
    got = {lb["code"]: lb for lb in c.items("/v1/legal-bases")}
    for code, (law, items) in SEEDED.items():
        assert got[code]["law_name"] == law
        assert set(got[code]["items"]) == items
        assert got[code]["created_by"] is None and got[code]["description"]
        assert [n["code"] for n in got[code]["item_names"]] == got[code]["items"]
    one = c.call("GET", f"/v1/legal-bases/{got['DOMESTIC-VIOLENCE']['id']}")
    assert one == got["DOMESTIC-VIOLENCE"]
    # cursor pagination walks the whole catalogue without repeats
    page = c.call("GET", "/v1/legal-bases", params={"limit": 3})
    assert len(page["items"]) == 3 and page["next_cursor"]
    nxt = c.call("GET", "/v1/legal-bases", params={"limit": 3, "cursor": page["next_cursor"]})
    assert not {x["id"] for x in page["items"]} & {x["id"] for x in nxt["items"]}
    problem(c.get("/v1/legal-bases", params={"cursor": "not-a-cursor"}), 400, "bad-cursor")
    problem(c.get("/v1/legal-bases", params={"limit": 0}), 400, "bad-query-parameter")
    problem(c.get(f"/v1/legal-bases/{uuid.uuid4()}"), 404, "not-found")


def test_permission_administrator_adds_a_law(admin, login, stack, demo):
    code = "TEST-" + uuid.uuid4().hex[:8].upper()
    body = {"code": code, "law_name": "測試福利條例" + code[-4:], "law_name_en": "Test Welfare Act",
            "items": ["C0101", "N0101"], "description": "整合測試用"}
    r = admin.post("/v1/legal-bases", json=body)
    assert r.status_code == 201, r.text
    lb = r.json()
    assert r.headers["Location"] == f"/v1/legal-bases/{lb['id']}"
    assert lb["items"] == ["C0101", "N0101"] and lb["created_by"] == demo["permadmin"]["account_id"]
    assert code in {x["code"] for x in login("querier1").items("/v1/legal-bases")}
    ev = events_about(stack, lb["id"])
    assert [e["type"] for e in ev] == ["legal_basis.created"] and ev[0]["details"]["items"] == ["C0101", "N0101"]
    # the same code or the same law again
    problem(admin.post("/v1/legal-bases", json=body), 409, "legal-basis-exists")
    problem(admin.post("/v1/legal-bases", json={**body, "code": code + "X"}), 409, "legal-basis-exists")


def test_only_the_permission_administrator_adds(admin, login, client, stack):
    body = {"code": "X-" + uuid.uuid4().hex[:6].upper(), "law_name": "不存在法" + uuid.uuid4().hex[:4],
            "items": ["C0101"]}
    for name in ("querier1", "supervisor1", "director", "permhead"):
        problem(login(name).post("/v1/legal-bases", json=body), 403, "forbidden")
    problem(admin.post("/v1/legal-bases", json={**body, "items": ["C0101", "X9999"]}), 422, "item-unknown")
    problem(admin.post("/v1/legal-bases", json={**body, "items": []}), 400, "validation-failed")
    problem(admin.post("/v1/legal-bases", json={**body, "code": "lower"}), 400, "validation-failed")
    problem(admin.post("/v1/legal-bases", json={**body, "extra": 1}), 400, "unknown-field")
    # no token, and a client token on a staff endpoint
    c = client()
    problem(c.get("/v1/legal-bases"), 401, "unauthenticated")
    tok = c.client_token("workflow", secret(stack, "workflow"))
    problem(c.get("/v1/legal-bases", headers={"Authorization": "Bearer " + tok}), 403, "forbidden")


def test_idempotent_creation(admin):
    code = "IDEM-" + uuid.uuid4().hex[:6].upper()
    body = {"code": code, "law_name": "冪等測試法" + code[-4:], "items": ["C0101"]}
    key = {"Idempotency-Key": "lb-" + code}
    a = admin.post("/v1/legal-bases", json=body, headers=key)
    b = admin.post("/v1/legal-bases", json=body, headers=key)
    assert a.status_code == b.status_code == 201
    assert a.json()["id"] == b.json()["id"] and b.headers.get("Idempotent-Replayed") == "true"
