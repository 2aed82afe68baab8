#!/usr/bin/python3
"""test_schema.py - the PostgreSQL schema (store/store_pg_schema.c) and the SQLite one (the
migrations of store/store_core.c) agree: the same tables, columns in order with their types,
NOT NULL and defaults, keys, indexes and triggers, as tests/helpers/pg_schema_check.py compares
them. A migration added for one engine only fails here. Run against PostgreSQL; on SQLite the
comparison needs the other engine, so it only checks that the SQLite schema is the one the
checker reads."""
import os
import subprocess
import sqlite3
import tempfile
import shutil

from gwtest import BIN, Checks, Gateway

CHECKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "helpers",
                       "pg_schema_check.py")

c = Checks("schema")
gw = Gateway()
# a SQLite installation beside it, whatever the run's store: init without ORDINATUS_DB
lite_dir = tempfile.mkdtemp(prefix="ordinatus-schema-")
try:
    env = {k: v for k, v in os.environ.items() if k != "ORDINATUS_DB"}
    lite_data = os.path.join(lite_dir, "data")
    out = subprocess.run([BIN, "init", "--data", lite_data], capture_output=True, text=True,
                         env=env)
    c.eq(out.returncode, 0, "a SQLite installation to compare with")
    lite_db = os.path.join(lite_data, "ordinatus.db")
    with sqlite3.connect(lite_db) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        version = db.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
    c.check("outbox" in tables and "bookings" in tables, "the SQLite schema has its tables")
    if gw.backend == "postgresql":
        with gw.db() as pg:
            pg_version = pg.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
        c.eq(pg_version, version, "both engines record the same schema version")
        res = subprocess.run(["/usr/bin/python3", CHECKER, lite_db, gw.dsn],
                             capture_output=True, text=True)
        if res.returncode != 0:
            print(res.stdout + res.stderr)
        c.eq(res.returncode, 0, "pg_schema_check finds no difference between the two schemas")
        c.check("postgresql://" not in res.stdout + res.stderr,
                "the checker never prints the database URL")
        # and it is a real comparison: a column the PostgreSQL side lacks is found
        with gw.db() as pg:
            pg.execute("ALTER TABLE meta ADD COLUMN extra TEXT")
        res = subprocess.run(["/usr/bin/python3", CHECKER, lite_db, gw.dsn],
                             capture_output=True, text=True)
        c.eq(res.returncode, 1, "an extra column on one side is a difference")
        c.check("extra" in res.stdout, "and the difference names the column: %r" % res.stdout)
    else:
        res = subprocess.run(["/usr/bin/python3", CHECKER, lite_db], capture_output=True,
                             text=True)
        c.eq(res.returncode, 2, "the checker wants both databases (usage error without one)")
finally:
    shutil.rmtree(lite_dir, ignore_errors=True)
    gw.cleanup()
c.done()
