"""Lookups on tables that grow without bound (every grant, application, query ever made) have an
index to use: each is planned here in the shape the service's statement has, with sequential
scans disabled, and must not read the whole table. (Found by planning every statement the
services ran in the test suite that way; the test database is too small for the planner to
prefer an index by itself.)"""

import json
import re

import pytest

from workflow_helpers import sql

WHO = "00000000-0000-4000-8000-000000000000"

LOOKUPS = {
    # bliproxy q_list: a caller's records, as querier, requester or applicant, or their unit's
    # for a supervisor
    "a caller's BLI query records": "SELECT id FROM bliproxy.queries q"
    f" WHERE q.querier_id = '{WHO}' OR q.requester_id = '{WHO}' OR q.applicant_id = '{WHO}' OR q.unit_id = '{WHO}'",
    # workflow qr_list for a caller who may not see all: their requests as querier, requester or
    # submitter, and their unit's
    "a caller's query requests": "SELECT id FROM workflow.query_requests q"
    f" WHERE q.querier_id = '{WHO}' OR q.requester_id = '{WHO}' OR q.submitted_by = '{WHO}' OR q.unit_id = '{WHO}'"
    " ORDER BY q.created_at, q.id LIMIT 50",
    # workflow ea_list for a unit that is not the target: its own applications and those it queries
    "a caller's Form 3 applications": "SELECT id FROM workflow.external_applications a"
    f" WHERE a.applicant_unit_id = '{WHO}' OR a.querier_id = '{WHO}' ORDER BY a.created_at, a.id LIMIT 50",
    # workflow ea_results: the first use of a subject's item, among the linked request's
    # consumptions (the index leads with the request)
    "a Form 3 item's first use": "SELECT min(c.consumed_at) FROM workflow.query_request_consumptions c"
    f" WHERE c.request_id = '{WHO}' AND c.subject_id = '{WHO}' AND c.item = 'C0101' AND c.released_at IS NULL",
    # accounts pa_list filtered by applicant
    "an applicant's permission applications": "SELECT id FROM accounts.permission_applications p"
    f" WHERE p.applicant_id = '{WHO}' ORDER BY p.created_at, p.id LIMIT 50",
    # accounts grant_list: an account's grants, revoked ones too
    "an account's grant history": f"SELECT id FROM accounts.grants g WHERE g.account_id = '{WHO}'"
    " ORDER BY g.item, g.granted_at",
    # accounts cod_advance: the applicant's approved change of duties not yet carried over
    "an applicant's past change of duties": "SELECT id FROM accounts.permission_applications"
    f" WHERE applicant_id = '{WHO}' AND type = 'change_of_duties' AND state = 'approved'"
    f" AND target_unit_id = '{WHO}' AND carried_over_at IS NULL ORDER BY closed_at DESC LIMIT 1",
}


def leading_column(stack, index):
    [col] = sql(stack, "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                       " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]"
                       f" WHERE c.relname = '{index}'")
    return col


def full_scans(stack, node):
    """Plan nodes that read a whole table: a sequential scan, or an index walked without a
    condition (which the planner picks over a sequential scan when those are disabled) or with
    conditions on its later columns only (every entry read, the condition checked on each)."""
    kind = node.get("Node Type", "")
    found = []
    if kind == "Seq Scan":
        found.append(f"{kind} on {node.get('Relation Name')}")
    elif kind in ("Index Scan", "Index Only Scan", "Bitmap Index Scan"):
        cond = node.get("Index Cond", "")
        if not re.search(r"\b%s\b" % re.escape(leading_column(stack, node["Index Name"])), cond):
            found.append(f"{kind} on {node['Index Name']} ({cond or 'no condition'})")
    for child in node.get("Plans", []):
        found += full_scans(stack, child)
    return found


@pytest.mark.parametrize("what", sorted(LOOKUPS))
def test_lookup_uses_an_index(stack, what):
    # with sequential scans and plain index scans off: on a small table the planner would as soon
    # walk an index in the ORDER BY's order with everything in a filter (a full scan by another
    # name), and which it picks depends on the table's statistics of the moment
    out = sql(stack, "SET enable_seqscan = off; SET enable_indexscan = off; EXPLAIN (FORMAT JSON) " + LOOKUPS[what])
    plan = json.loads("\n".join(out[out.index("[") if "[" in out else 1:]))
    assert full_scans(stack, plan[0]["Plan"]) == [], json.dumps(plan, indent=1)
