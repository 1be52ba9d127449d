-- bligate: one schema per service, owned by bligate_<svc>_owner (runs the migrations), used by
-- the runtime login role bligate_<svc> (gets only what the migrations grant it). Run as a
-- superuser connected to the database bligate; safe to run again.
-- The one source for scripts/stack (development), docker/compose.yaml (mounted into
-- /docker-entrypoint-initdb.d) and docker/k8s (the db-init Job).
SET client_min_messages = warning;
DO $$
DECLARE
  s text;
  owner text;
  runtime text;
BEGIN
  FOREACH s IN ARRAY ARRAY['accounts', 'workflow', 'bliproxy', 'audit'] LOOP
    owner := 'bligate_' || s || '_owner';
    runtime := 'bligate_' || s;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = owner) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', owner);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = runtime) THEN
      EXECUTE format('CREATE ROLE %I LOGIN', runtime);
    END IF;
    EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I AUTHORIZATION %I', s, owner);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, runtime);
    EXECUTE format('GRANT CONNECT ON DATABASE bligate TO %I, %I', owner, runtime);
    EXECUTE format('ALTER ROLE %I IN DATABASE bligate SET search_path = %I', owner, s);
    EXECUTE format('ALTER ROLE %I IN DATABASE bligate SET search_path = %I', runtime, s);
  END LOOP;
END
$$;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE bligate FROM PUBLIC;
