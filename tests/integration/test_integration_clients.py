"""Integration clients (issue 8): the permission administrator registers another city system as a
client of one unit; with approvals:read it reads that unit's query requests, with
approvals:decide it records a decision a named supervisor took in the document system — checked
as if that person decided here, with both identities on the log. A client of unit A cannot read
or act for unit B. The secret is shown once, stored hashed, and rotates; a disabled client gets
no token."""

from conftest import new_national_id, poll, problem
from workflow_helpers import bases, form2, subject  # noqa: F401


def register(admin, demo, unit_of, scopes, name="公文系統"):
    return admin.call("POST", "/v1/integration-clients", status=201, json={
        "name": name, "unit_id": demo[unit_of]["unit_id"], "scopes": scopes, "description": "document system"})


def as_client(client, ic, secret=None):
    c = client()
    c.token = client().client_token(ic["client_id"], secret or ic["client_secret"])
    return c


def test_a_unit_client_reads_and_decides_for_its_unit_only(admin, client, demo, login, bases):
    a = register(admin, demo, "supervisor1", ["approvals:read", "approvals:decide"])
    b = register(admin, demo, "supervisor2", ["approvals:read", "approvals:decide"], name="另一科公文系統")
    ro = register(admin, demo, "supervisor1", ["approvals:read"], name="只讀")
    assert a["client_id"].startswith("ic-") and len(a["client_secret"]) >= 40
    assert a["scopes"] == ["approvals:read", "approvals:decide"] and a["unit_id"] == demo["supervisor1"]["unit_id"]
    # shown once: reads never return it
    assert "client_secret" not in admin.call("GET", f"/v1/integration-clients/{a['client_id']}")
    ca, cb, cro = as_client(client, a), as_client(client, b), as_client(client, ro)
    nid = new_national_id()
    req = login("querier1").call("POST", "/v1/query-requests", status=201,
                                 json=form2(bases["PUBLIC-ASSISTANCE"], [subject(["C0101"], nid)]))
    # reading: the unit's client sees it (IDs masked), the other unit's sees nothing
    pending = [x["id"] for x in ca.items("/v1/query-requests", params={"state": "pending"})]
    assert req["id"] in pending
    assert req["id"] not in [x["id"] for x in cb.items("/v1/query-requests", params={"state": "pending"})]
    one = ca.call("GET", f"/v1/query-requests/{req['id']}")
    assert all("national_id" not in s for s in one["subjects"]) and nid not in str(one)
    problem(cb.get(f"/v1/query-requests/{req['id']}"), 404, "not-found")
    url = f"/v1/query-requests/{req['id']}/decision"
    sup1, sup2, q1 = (demo[n]["account_id"] for n in ("supervisor1", "supervisor2", "querier1"))
    # refusals: read-only scope, another unit's client, no named decider, the wrong person
    problem(cro.post(url, json={"decision": "approve", "on_behalf_of": sup1}), 403, "forbidden")
    problem(cb.post(url, json={"decision": "approve", "on_behalf_of": sup2}), 404, "not-found")
    problem(ca.post(url, json={"decision": "approve"}), 400, "validation-failed")
    problem(ca.post(url, json={"decision": "approve", "on_behalf_of": q1}), 403, "self-approval")
    problem(ca.post(url, json={"decision": "approve", "on_behalf_of": sup2}), 403, "not-request-decider")
    # staff decide as themselves
    problem(login("supervisor1").post(url, json={"decision": "approve", "on_behalf_of": sup1}), 400,
            "validation-failed")
    # the decision supervisor1 took in the document system
    done = ca.call("POST", url, json={"decision": "approve", "on_behalf_of": sup1})
    assert done["state"] == "approved" and done["decision"]["decided_by"] == sup1
    # relayed, not read: the reply masks the subjects' IDs as the client's GET does
    assert all("national_id" not in s and s["national_id_masked"] for s in done["subjects"]) and nid not in str(done)
    ev = poll("the decision's event", lambda: [
        e for e in login("ethics1").items("/v1/audit/events",
                                          params={"type": "query_request.decided", "object_id": req["id"]})])
    event = ev[0]["event"]
    assert event["actor"]["client_id"] == a["client_id"]
    assert event["details"]["on_behalf_of"]["account_id"] == sup1
    # a client token is no staff token elsewhere
    problem(ca.get("/v1/legal-bases"), 403, "forbidden")
    problem(ca.get("/v1/accounts"), 403, "forbidden")


def test_secret_rotation_and_disabling(admin, client, demo, login):
    ic = register(admin, demo, "supervisor1", ["approvals:read"])
    old = ic["client_secret"]
    as_client(client, ic)  # works
    rotated = admin.call("POST", f"/v1/integration-clients/{ic['client_id']}/secret", json={})
    assert rotated["client_secret"] != old
    r = client().post("/v1/auth/tokens", bearer=False, data={
        "grant_type": "client_credentials", "client_id": ic["client_id"], "client_secret": old})
    problem(r, 401, "invalid-client")
    as_client(client, ic, rotated["client_secret"])
    gone = admin.call("POST", f"/v1/integration-clients/{ic['client_id']}/disable", json={})
    assert gone["status"] == "disabled"
    r = client().post("/v1/auth/tokens", bearer=False, data={
        "grant_type": "client_credentials", "client_id": ic["client_id"], "client_secret": rotated["client_secret"]})
    problem(r, 401, "invalid-client")
    listed = [x["client_id"] for x in admin.items("/v1/integration-clients")]
    assert ic["client_id"] in listed
    # each change is on the log
    types = poll("the client's events", lambda: (lambda t: t if len(t) >= 3 else None)(
        [e["event"]["type"] for e in login("ethics1").items("/v1/audit/events", params={"object_id": ic["client_id"]})]))
    assert types == ["integration_client.created", "integration_client.secret_rotated", "integration_client.disabled"]


def test_only_the_permission_administrator_manages_clients(login, client, demo, admin):
    body = {"name": "x system", "unit_id": demo["supervisor1"]["unit_id"], "scopes": ["approvals:read"]}
    for name in ("supervisor1", "querier1", "permhead"):
        problem(login(name).post("/v1/integration-clients", json=body), 403, "forbidden")
        problem(login(name).get("/v1/integration-clients"), 403, "forbidden")
    # free text goes into events: an ID number typed into it is refused, naming the field (its
    # event would have been refused by the audit log and stalled accounts' outbox behind it)
    p = problem(admin.post("/v1/integration-clients", json=dict(body, name="edoc " + new_national_id())), 400,
                "validation-failed")
    assert p["errors"][0]["field"] == "name" and p["errors"][0]["code"] == "national-id"
    problem(client().post("/v1/integration-clients", json=body), 401, "unauthenticated")
    problem(admin.post("/v1/integration-clients", json=dict(body, scopes=["accounts:read"])), 400, "validation-failed")
    problem(admin.post("/v1/integration-clients", json=dict(body, unit_id="00000000-0000-4000-8000-000000000000")),
            422, "unit-unknown")
    problem(admin.get("/v1/integration-clients/ic-000000000000"), 404, "not-found")
    problem(admin.get("/v1/integration-clients/nonsense"), 404, "not-found")
