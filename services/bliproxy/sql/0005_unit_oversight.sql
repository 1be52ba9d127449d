-- Rule 4: the querier's supervisor oversees the use of the data, so a unit's supervisor lists
-- the query records of the unit (metadata only; the data stays with the querier, the requester
-- and a Form 3 applicant). The unit's records by time, for that list (its fourth arm).
CREATE INDEX queries_unit ON queries (unit_id, created_at, id);
