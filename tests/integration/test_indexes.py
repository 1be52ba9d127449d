"""Lookups on tables that grow without bound (every grant, application, query ever made) have an
index to use: each is planned here in the shape the service's statement has, with sequential
scans disabled, and must not read the whole table. (Found by planning every statement the
services ran in the test suite that way; the test database is too small for the planner to
prefer an index by itself.)"""

import pytest

from workflow_helpers import sql

WHO = "00000000-0000-4000-8000-000000000000"

LOOKUPS = {
    # bliproxy q_list: a caller's records, as querier, requester or applicant
    "a caller's BLI query records": "SELECT id FROM bliproxy.queries q"
    f" WHERE q.querier_id = '{WHO}' OR q.requester_id = '{WHO}' OR q.applicant_id = '{WHO}'",
    # accounts grant_list: an account's grants, revoked ones too
    "an account's grant history": f"SELECT id FROM accounts.grants g WHERE g.account_id = '{WHO}'"
    " ORDER BY g.item, g.granted_at",
    # accounts cod_advance: the applicant's approved change of duties not yet carried over
    "an applicant's past change of duties": "SELECT id FROM accounts.permission_applications"
    f" WHERE applicant_id = '{WHO}' AND type = 'change_of_duties' AND state = 'approved'"
    f" AND target_unit_id = '{WHO}' AND carried_over_at IS NULL ORDER BY closed_at DESC LIMIT 1",
}


@pytest.mark.parametrize("what", sorted(LOOKUPS))
def test_lookup_uses_an_index(stack, what):
    plan = "\n".join(sql(stack, "SET enable_seqscan = off; EXPLAIN " + LOOKUPS[what]))
    assert "Seq Scan" not in plan, plan
