"""Creating POSTs honour Idempotency-Key (DESIGN.md §3): a retry gets the first reply and
creates nothing new; the same key with another request is refused; a refused request does not
use up its key."""

import uuid

from conftest import new_national_id, problem


def test_retry_returns_the_first_reply(admin):
    key = str(uuid.uuid4())
    code = "ID-" + uuid.uuid4().hex[:6].upper()
    body = {"code": code, "name": "冪等測試科", "kind": "section"}
    first = admin.post("/v1/units", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201, first.text
    again = admin.post("/v1/units", json=body, headers={"Idempotency-Key": key})
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Location"] == first.headers["Location"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert sum(1 for u in admin.items("/v1/units") if u["code"] == code) == 1
    # without the key, the same body is a second request (and here a conflict)
    problem(admin.post("/v1/units", json=body), 409, "unit-code-taken")


def test_same_key_other_request_is_refused(admin):
    key = str(uuid.uuid4())
    a = {"code": "ID-" + uuid.uuid4().hex[:6].upper(), "name": "A", "kind": "section"}
    b = dict(a, name="B")
    assert admin.post("/v1/units", json=a, headers={"Idempotency-Key": key}).status_code == 201
    problem(admin.post("/v1/units", json=b, headers={"Idempotency-Key": key}), 422, "idempotency-key-reused")


def test_refused_request_does_not_use_up_the_key(admin, demo):
    key = str(uuid.uuid4())
    body = {"name": "冪等", "national_id": "A123456788", "unit_id": demo["querier1"]["unit_id"], "title": "科員"}
    problem(admin.post("/v1/accounts", json=body, headers={"Idempotency-Key": key}), 400, "validation-failed")
    body["national_id"] = new_national_id()
    r = admin.post("/v1/accounts", json=body, headers={"Idempotency-Key": key})
    assert r.status_code == 201, r.text


def test_keys_belong_to_their_caller(admin, login):
    key = str(uuid.uuid4())
    body = {"type": "new", "items": ["C0101"], "reason": "冪等測試",
            "acknowledgements": {"pdpa_read": True, "environment_ready": True}}
    q = login("querier2")
    # querier2 may have an open application from the demo data flow: withdraw it first
    for a in q.items("/v1/permission-applications", params={"mine": "true"}):
        if a["state"] in ("pending_supervisor", "pending_admin", "pending_head", "returned"):
            q.call("POST", f"/v1/permission-applications/{a['id']}/withdraw", json={})
    r1 = q.post("/v1/permission-applications", json=body, headers={"Idempotency-Key": key})
    assert r1.status_code == 201, r1.text
    # another caller with the same key is a different request altogether
    other = admin.post("/v1/units", json={"code": "ID-" + uuid.uuid4().hex[:6].upper(), "name": "x",
                                          "kind": "section"}, headers={"Idempotency-Key": key})
    assert other.status_code == 201 and "Idempotent-Replayed" not in other.headers
    q.call("POST", f"/v1/permission-applications/{r1.json()['id']}/withdraw", json={})


def test_bad_key(admin):
    b = problem(admin.post("/v1/units", json={"code": "X", "name": "x", "kind": "section"},
                           headers={"Idempotency-Key": "x" * 300}), 400, "validation-failed")
    assert b["errors"][0]["field"] == "Idempotency-Key"


def test_the_stored_request_digest_is_keyed(admin, stack, demo):
    """A creating body may hold a national ID; the key's record keeps only a keyed digest of
    the request, so the ID cannot be recovered by hashing candidate IDs."""
    import hashlib
    import json
    import subprocess
    nid = new_national_id()
    key = str(uuid.uuid4())
    body = json.dumps({"name": "冪等測試員", "national_id": nid, "unit_id": demo["querier1"]["unit_id"],
                       "title": "科員", "roles": ["querier"]}, ensure_ascii=False).encode()
    headers = {"Idempotency-Key": key, "Content-Type": "application/json"}
    first = admin.post("/v1/accounts", data=body, headers=headers)
    assert first.status_code == 201, first.text
    again = admin.post("/v1/accounts", data=body, headers=headers)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    stored = subprocess.run(["psql", stack["BLIGATE_DB_SUPER_URL"], "-X", "-At", "-c",
                             f"SELECT request_hash FROM accounts.idempotency_keys WHERE key = '{key}'"],
                            check=True, capture_output=True, text=True).stdout.strip()
    plain = hashlib.sha256(b"POST\n/v1/accounts\n" + body).hexdigest()
    assert len(stored) == 64 and stored != plain
