-- Placeholder for migration 0014, which another branch of issue 12 brings; drop this file at merge.
SELECT 1;
