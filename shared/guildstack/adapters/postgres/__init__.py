"""PostgreSQL: connection pool, RLS-scoped transactions, migrations."""
