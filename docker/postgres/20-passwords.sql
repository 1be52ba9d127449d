-- bligate in containers: each login role's password from its compose secret (a file under
-- /run/secrets; docker/gen-secrets writes them). Read with psql's backquote, so a password is
-- never on a command line, in the environment or in this file. Runs after 10-roles.sql, once,
-- when the official postgres image initialises an empty data directory. Changing a password
-- later: docker/README.md ("Rotating database passwords").
\set ON_ERROR_STOP on
\set pw `cat /run/secrets/db_accounts_owner_password`
ALTER ROLE bligate_accounts_owner PASSWORD :'pw';
\set pw `cat /run/secrets/db_accounts_password`
ALTER ROLE bligate_accounts PASSWORD :'pw';
\set pw `cat /run/secrets/db_workflow_owner_password`
ALTER ROLE bligate_workflow_owner PASSWORD :'pw';
\set pw `cat /run/secrets/db_workflow_password`
ALTER ROLE bligate_workflow PASSWORD :'pw';
\set pw `cat /run/secrets/db_bliproxy_owner_password`
ALTER ROLE bligate_bliproxy_owner PASSWORD :'pw';
\set pw `cat /run/secrets/db_bliproxy_password`
ALTER ROLE bligate_bliproxy PASSWORD :'pw';
\set pw `cat /run/secrets/db_audit_owner_password`
ALTER ROLE bligate_audit_owner PASSWORD :'pw';
\set pw `cat /run/secrets/db_audit_password`
ALTER ROLE bligate_audit PASSWORD :'pw';
\unset pw
