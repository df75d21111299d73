-- create the reporting role
CREATE ROLE reporting LOGIN PASSWORD 'juniper-maple-copper-52';
GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporting;
ALTER USER app WITH PASSWORD 'Zv3eN9NQoYSHQHm5';
CREATE USER 'legacy'@'%' IDENTIFIED BY 'meadow-falcon-cobalt-52';
-- checksum 6794dd32cd017a498d9f07f6b89f1300ba1d1d1362aa8a3718959727e24a6efd
