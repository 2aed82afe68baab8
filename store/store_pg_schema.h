/*
 * store_pg_schema.h - the PostgreSQL schema: the statements that build, on an empty database,
 * what the SQLite migrations m1..m13 of store_core.c build.
 */
#ifndef STORE_PG_SCHEMA_H
#define STORE_PG_SCHEMA_H

/* The schema version store_pg_schema[] builds: equal to STORE_SCHEMA_VERSION while the two
 * backends agree (a migration added to store_core.c needs its PostgreSQL form here). */
#define STORE_PG_SCHEMA_VERSION 13

/* store_pg_schema - the PostgreSQL statements that build the schema at version 13, in order,
 * NULL-terminated. Static strings, one statement each, run in one transaction on an empty
 * database owned by the connecting role (btree_gist is a trusted extension). schema_migrations
 * is not among them: the store creates it. */
extern const char *const store_pg_schema[];

#endif
