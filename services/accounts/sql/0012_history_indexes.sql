-- Two lookups that had no index to use, so each read its whole table (found by planning every
-- statement the services ran in the test suite with sequential scans disabled):
--  * an account's grants, revoked ones included (grant_list, GET /v1/accounts/{id}/grants):
--    grants_current covers only the grants not revoked;
--  * an applicant's applications: the list filtered by applicant (pa_list) and the past
--    change of duties carried over at a change of unit (cod_advance) —
--    permission_applications_one_open covers only the open one.
-- Both tables grow with every grant and application ever made; neither is written on a hot
-- path, so the indexes cost nothing that matters. Run as bligate_accounts_owner.
CREATE INDEX grants_account ON grants (account_id, item, granted_at);
CREATE INDEX permission_applications_applicant ON permission_applications (applicant_id, created_at, id);
