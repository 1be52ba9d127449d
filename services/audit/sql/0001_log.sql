-- audit: the append-only event log, a Merkle tree (RFC 9162), and its signed tree heads.
-- Run as bligate_audit_owner. docs/audit-log.md describes the hashing and the canonical form.

-- One row per leaf. idx is gap-free: the one writer holds log_state's row lock while it
-- assigns indices (sequences leave gaps). canonical is the exact text whose leaf hash
-- SHA-256(0x00 || canonical) enters the tree; the other columns are derived for searching.
CREATE TABLE events (
  idx           bigint PRIMARY KEY CHECK (idx >= 0),
  event_id      uuid NOT NULL UNIQUE,
  leaf_hash     bytea NOT NULL CHECK (length(leaf_hash) = 32),
  canonical     text NOT NULL,
  type          text NOT NULL,
  time          timestamptz NOT NULL,
  source        text NOT NULL,
  actor_id      text,
  object_kind   text,
  object_id     text,
  subject_hmacs text[] NOT NULL DEFAULT '{}',
  received_at   timestamptz NOT NULL
);
CREATE INDEX events_time ON events (time, idx);
CREATE INDEX events_type ON events (type, idx);
CREATE INDEX events_actor ON events (actor_id, idx) WHERE actor_id IS NOT NULL;
CREATE INDEX events_object ON events (object_id, idx) WHERE object_id IS NOT NULL;
CREATE INDEX events_subject ON events USING gin (subject_hmacs);

-- Hashes of the perfect subtrees above the leaves: level L, index i covers leaves
-- [i * 2^L, (i + 1) * 2^L). Proofs read O(log n) of them instead of rehashing leaves.
CREATE TABLE nodes (
  level  smallint NOT NULL CHECK (level BETWEEN 1 AND 63),
  idx    bigint NOT NULL CHECK (idx >= 0),
  hash   bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- The single writer's lock and the tree's right edge (the roots of its perfect subtrees,
-- largest first), so an append needs no earlier leaf.
CREATE TABLE log_state (
  id         smallint PRIMARY KEY CHECK (id = 1),
  tree_size  bigint NOT NULL CHECK (tree_size >= 0),
  root_hash  bytea NOT NULL CHECK (length(root_hash) = 32),
  frontier   bytea NOT NULL
);
INSERT INTO log_state (id, tree_size, root_hash, frontier) VALUES (1, 0, sha256(''::bytea), ''::bytea);

-- Signed tree heads: signature is a JWS (ES256, the audit service's own key) over
-- {"root_hash", "timestamp", "tree_size"}.
CREATE TABLE tree_heads (
  tree_size   bigint PRIMARY KEY CHECK (tree_size >= 0),
  root_hash   bytea NOT NULL CHECK (length(root_hash) = 32),
  timestamp   timestamptz NOT NULL,
  key_id      text NOT NULL,
  signature   text NOT NULL
);

-- Append-only for everyone, the owner and superusers included: a trigger refuses UPDATE,
-- DELETE and TRUNCATE on the log's tables (the runtime role has no such grant either).
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit.% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER nodes_append_only BEFORE UPDATE OR DELETE ON nodes
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER nodes_no_truncate BEFORE TRUNCATE ON nodes
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER tree_heads_append_only BEFORE UPDATE OR DELETE ON tree_heads
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER tree_heads_no_truncate BEFORE TRUNCATE ON tree_heads
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
-- log_state is the writer's lock and cache: updated, never deleted.
CREATE TRIGGER log_state_no_delete BEFORE DELETE ON log_state
  FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER log_state_no_truncate BEFORE TRUNCATE ON log_state
  FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

REVOKE ALL ON events, nodes, log_state, tree_heads FROM PUBLIC;
GRANT SELECT, INSERT ON events, nodes, tree_heads TO bligate_audit;
GRANT SELECT, UPDATE ON log_state TO bligate_audit;
