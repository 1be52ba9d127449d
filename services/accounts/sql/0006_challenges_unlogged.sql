-- Login challenges are disposable: valid 60 s, single use. Unlogged, they cost no WAL when
-- issued or consumed (two of a login's three commits then need no flush). A crash empties an
-- unlogged table, and a standby has none: every outstanding challenge becomes unknown and the
-- client asks for a new one; a consumed challenge can never come back, so single use holds.
ALTER TABLE challenges SET UNLOGGED;
