-- Placeholder on branch perf-plans only: 0010 belongs to the audit-append change (perf-audit), and
-- versions must be contiguous. Drop this file when merging that branch's 0010.
SELECT 1;
