-- Registration (Form 2) and application (Form 3) numbers are counted per year (Asia/Taipei), as
-- the contract says: F2-2027-000001 is the first of 2027. One global sequence per form with the
-- year prefixed went on from the year before. One counter row per (form, year), taken in the
-- insert's own transaction (INSERT ... ON CONFLICT DO UPDATE ... RETURNING): a rolled-back
-- insert gives its number back, and two inserts of the same form and year queue on the row.
-- Each year's counter starts from the highest number it already gave, so no number repeats.
-- Run as bligate_workflow_owner.
CREATE TABLE form_numbers (
  form  text NOT NULL CHECK (form IN ('F2', 'F3')),
  year  int NOT NULL CHECK (year BETWEEN 2000 AND 9999),
  last  int NOT NULL CHECK (last >= 1),
  PRIMARY KEY (form, year)
);

INSERT INTO form_numbers (form, year, last)
  SELECT 'F2', split_part(registration_no, '-', 2)::int, max(split_part(registration_no, '-', 3)::int)
  FROM query_requests GROUP BY 2;
INSERT INTO form_numbers (form, year, last)
  SELECT 'F3', split_part(application_no, '-', 2)::int, max(split_part(application_no, '-', 3)::int)
  FROM external_applications GROUP BY 2;

GRANT SELECT, INSERT, UPDATE ON form_numbers TO bligate_workflow;
REVOKE USAGE ON SEQUENCE query_request_no, external_application_no FROM bligate_workflow;
DROP SEQUENCE query_request_no, external_application_no;
