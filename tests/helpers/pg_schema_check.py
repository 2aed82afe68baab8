#!/usr/bin/python3
"""pg_schema_check.py - compare the SQLite schema with the PostgreSQL one (store/store_pg_schema.c).

usage: pg_schema_check.py SQLITE_DB POSTGRES_DSN

SQLITE_DB is a database built by the migrations of store/store_core.c; POSTGRES_DSN a libpq
connection string or postgresql:// URL of a database built by store_pg_schema[] (read with
psql, which must be on PATH; the DSN is never printed). Prints one line per difference and exits
1 if there is any, 0 if there is none, 2 on a usage or connection error.

Compared, table by table (schema_migrations only when both sides have it):
- the tables;
- the columns in order: name, type (INTEGER and BIGINT -> bigint, TEXT -> text, REAL -> double
  precision), NOT NULL, default, and identity (a rowid alias named id is an identity column);
- the primary key, the UNIQUE constraints, the foreign keys (columns, table, ON DELETE) and
  the number of CHECK constraints;
- the named indexes: unique or not, their columns (an expression counts as one column named
  <expr>) and the WHERE of a partial index;
- the triggers: each SQLite trigger must have its PostgreSQL form (TRIGGER_FORMS below).
A column of a SQLite primary key counts as NOT NULL, as it is in PostgreSQL: SQLite takes NULL
in a TEXT PRIMARY KEY of a rowid table only as a kept bug, and the store never writes one.
"""
import re
import sqlite3
import subprocess
import sys

TYPES = {"INTEGER": "bigint", "BIGINT": "bigint", "TEXT": "text", "REAL": "double precision"}

# SQLite trigger -> what stands for it in PostgreSQL: ("constraint", table, name) for a
# constraint (the exclusion constraint slot_taken), ("trigger", table, name) for a trigger
TRIGGER_FORMS = {
    "bookings_no_overlap_insert": ("constraint", "bookings", "slot_taken"),
    "bookings_no_overlap_update": ("constraint", "bookings", "slot_taken"),
    "users_end_sessions": ("trigger", "users", "users_end_sessions"),
}

SEP = "\x1f"
NULL = "\x1e"


class Pg:
    """Queries through psql: one row a line, fields split by SEP, NULL as the NULL mark."""

    def __init__(self, dsn):
        self.dsn = dsn

    def rows(self, sql, *args):
        # psql's variables quote the arguments (:'name'), so no text is spliced into the SQL
        cmd = ["psql", "-X", "-q", "-A", "-t", "-F", SEP, "-P", "null=" + NULL,
               "-v", "ON_ERROR_STOP=1", "-d", self.dsn]
        for i, a in enumerate(args):
            cmd += ["-v", "a%d=%s" % (i, a)]
        r = subprocess.run(cmd, input=sql, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr.strip())  # "psql: error: ..."
        out = []
        for line in r.stdout.split("\n"):  # not splitlines(): it splits at NULL
            if line:
                out.append([None if f == NULL else f for f in line.split(SEP)])
        return out


def norm_default(d):
    """A default as text both sides agree on: no casts, no outer parentheses."""
    if d is None:
        return None
    d = re.sub(r"::(text|bigint|integer|double precision|numeric)\b", "", d.strip())
    while d.startswith("(") and d.endswith(")"):
        d = d[1:-1].strip()
    return d


def norm_pred(p):
    """A partial index's WHERE, lowercase, without casts, parentheses or runs of blanks."""
    if p is None:
        return None
    p = re.sub(r"::text\b", "", p)
    p = p.replace("(", " ").replace(")", " ")
    return " ".join(p.lower().split())


def sqlite_schema(path):
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    s = {"tables": {}, "indexes": {}, "triggers": {}}
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'"
                                " AND name NOT LIKE 'sqlite_%' ORDER BY name"):
        t = {"columns": [], "pk": [], "unique": set(), "fks": set(),
             "checks": len(re.findall(r"\bCHECK\s*\(", sql, re.I))}
        without_rowid = re.search(r"WITHOUT\s+ROWID\s*;?\s*$", sql, re.I) is not None
        info = db.execute("SELECT cid, name, type, \"notnull\", dflt_value, pk"
                          " FROM pragma_table_info(?)", (name,)).fetchall()
        npk = sum(1 for c in info if c[5])
        for cid, cname, ctype, notnull, dflt, pk in info:
            rowid_alias = (npk == 1 and pk == 1 and ctype.upper() == "INTEGER"
                           and not without_rowid)
            t["columns"].append({
                "name": cname,
                "type": TYPES.get(ctype.upper(), "?" + ctype),
                "notnull": bool(notnull or pk),
                "default": norm_default(dflt),
                "identity": rowid_alias and cname == "id",
            })
        t["pk"] = [c[1] for c in sorted((c for c in info if c[5]), key=lambda c: c[5])]
        for _, iname, unique, origin, partial in db.execute(
                "SELECT seq, name, \"unique\", origin, partial FROM pragma_index_list(?)",
                (name,)):
            cols = [c[2] if c[2] is not None else "<expr>" for c in db.execute(
                "SELECT seqno, cid, name FROM pragma_index_info(?) ORDER BY seqno", (iname,))]
            if origin == "u":
                t["unique"].add(tuple(cols))
            elif origin == "c":
                isql = db.execute("SELECT sql FROM sqlite_master WHERE type = 'index'"
                                  " AND name = ?", (iname,)).fetchone()[0]
                m = re.search(r"\bWHERE\b(.*?);?\s*$", isql, re.I | re.S)
                s["indexes"][iname] = {"table": name, "unique": bool(unique), "columns": cols,
                                       "where": norm_pred(m.group(1)) if m else None}
        fks = {}
        for fid, seq, ref, frm, to, _upd, on_delete, _match in db.execute(
                "SELECT id, seq, \"table\", \"from\", \"to\", on_update, on_delete, match"
                " FROM pragma_foreign_key_list(?) ORDER BY id, seq", (name,)):
            f = fks.setdefault(fid, [[], ref, [], on_delete.upper()])
            f[0].append(frm)
            f[2].append(to)
        t["fks"] = {(tuple(f[0]), f[1], tuple(f[2]), f[3]) for f in fks.values()}
        s["tables"][name] = t
    for name, table in db.execute("SELECT name, tbl_name FROM sqlite_master"
                                  " WHERE type = 'trigger'"):
        s["triggers"][name] = table
    db.close()
    return s


PG_COLUMNS = """
SELECT column_name, data_type, is_nullable, column_default, is_identity
FROM information_schema.columns
WHERE table_schema = 'public' AND table_name = :'a0'
ORDER BY ordinal_position;
"""

PG_CONSTRAINTS = """
SELECT c.contype, c.conname, f.relname,
       (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.conkey) WITH ORDINALITY
        AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
       (SELECT string_agg(a.attname, ',' ORDER BY k.n) FROM unnest(c.confkey) WITH ORDINALITY
        AS k(attnum, n) JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
       c.confdeltype
FROM pg_constraint c JOIN pg_class r ON r.oid = c.conrelid
JOIN pg_namespace ns ON ns.oid = r.relnamespace
LEFT JOIN pg_class f ON f.oid = c.confrelid
WHERE ns.nspname = 'public' AND r.relname = :'a0';
"""

PG_INDEXES = """
SELECT i.relname, t.relname, x.indisunique,
       (SELECT string_agg(coalesce(a.attname, '<expr>'), ',' ORDER BY k.n)
        FROM unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
        LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum
                                 AND k.attnum > 0),
       pg_get_expr(x.indpred, x.indrelid)
FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace ns ON ns.oid = t.relnamespace
WHERE ns.nspname = 'public'
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid
                  AND c.conrelid = x.indrelid);
"""

PG_TRIGGERS = """
SELECT g.tgname, r.relname FROM pg_trigger g JOIN pg_class r ON r.oid = g.tgrelid
JOIN pg_namespace ns ON ns.oid = r.relnamespace
WHERE ns.nspname = 'public' AND NOT g.tgisinternal;
"""

ON_DELETE = {"a": "NO ACTION", "r": "RESTRICT", "c": "CASCADE", "n": "SET NULL",
             "d": "SET DEFAULT"}


def pg_schema(pg):
    s = {"tables": {}, "indexes": {}, "triggers": {}, "constraints": set()}
    for (name,) in pg.rows("SELECT tablename FROM pg_tables WHERE schemaname = 'public';"):
        t = {"columns": [], "pk": [], "unique": set(), "fks": set(), "checks": 0}
        for cname, ctype, nullable, dflt, identity in pg.rows(PG_COLUMNS, name):
            t["columns"].append({"name": cname, "type": ctype, "notnull": nullable == "NO",
                                 "default": norm_default(dflt), "identity": identity == "YES"})
        for ctype, cname, ref, cols, refcols, deltype in pg.rows(PG_CONSTRAINTS, name):
            cols = tuple(cols.split(",")) if cols else ()
            s["constraints"].add((name, cname, ctype))
            if ctype == "p":
                t["pk"] = list(cols)
            elif ctype == "u":
                t["unique"].add(cols)
            elif ctype == "f":
                t["fks"].add((cols, ref, tuple(refcols.split(",")), ON_DELETE[deltype]))
            elif ctype == "c":
                t["checks"] += 1
        s["tables"][name] = t
    for iname, table, unique, cols, pred in pg.rows(PG_INDEXES):
        s["indexes"][iname] = {"table": table, "unique": unique == "t",
                               "columns": cols.split(","), "where": norm_pred(pred)}
    for name, table in pg.rows(PG_TRIGGERS):
        s["triggers"][name] = table
    return s


def compare(lite, pg):
    out = []
    lt, pt = lite["tables"], pg["tables"]
    if not ("schema_migrations" in lt and "schema_migrations" in pt):
        lt.pop("schema_migrations", None)
        pt.pop("schema_migrations", None)
    for name in sorted(set(lt) - set(pt)):
        out.append("table %s: only in SQLite" % name)
    for name in sorted(set(pt) - set(lt)):
        out.append("table %s: only in PostgreSQL" % name)
    for name in sorted(set(lt) & set(pt)):
        a, b = lt[name], pt[name]
        an = [c["name"] for c in a["columns"]]
        bn = [c["name"] for c in b["columns"]]
        if an != bn:
            out.append("table %s: columns differ\n  SQLite:     %s\n  PostgreSQL: %s"
                       % (name, ", ".join(an), ", ".join(bn)))
        bcols = {c["name"]: c for c in b["columns"]}
        for ca in a["columns"]:
            cb = bcols.get(ca["name"])
            if cb is None:
                continue
            for k in ("type", "notnull", "default", "identity"):
                if ca[k] != cb[k]:
                    out.append("column %s.%s: %s %r in SQLite, %r in PostgreSQL"
                               % (name, ca["name"], k, ca[k], cb[k]))
        if a["pk"] != b["pk"]:
            out.append("table %s: primary key %s in SQLite, %s in PostgreSQL"
                       % (name, a["pk"], b["pk"]))
        for u in sorted(a["unique"] - b["unique"]):
            out.append("table %s: UNIQUE(%s) only in SQLite" % (name, ", ".join(u)))
        for u in sorted(b["unique"] - a["unique"]):
            out.append("table %s: UNIQUE(%s) only in PostgreSQL" % (name, ", ".join(u)))
        for f in sorted(a["fks"] - b["fks"]):
            out.append("table %s: foreign key %s only in SQLite" % (name, f))
        for f in sorted(b["fks"] - a["fks"]):
            out.append("table %s: foreign key %s only in PostgreSQL" % (name, f))
        if a["checks"] != b["checks"]:
            out.append("table %s: %d CHECK constraints in SQLite, %d in PostgreSQL"
                       % (name, a["checks"], b["checks"]))
    li, pi = lite["indexes"], pg["indexes"]
    for name in sorted(set(li) - set(pi)):
        out.append("index %s: only in SQLite" % name)
    for name in sorted(set(pi) - set(li)):
        out.append("index %s: only in PostgreSQL" % name)
    for name in sorted(set(li) & set(pi)):
        for k in ("table", "unique", "columns", "where"):
            if li[name][k] != pi[name][k]:
                out.append("index %s: %s %r in SQLite, %r in PostgreSQL"
                           % (name, k, li[name][k], pi[name][k]))
    forms = set()
    for name, table in sorted(lite["triggers"].items()):
        form = TRIGGER_FORMS.get(name)
        if form is None:
            out.append("trigger %s on %s: no PostgreSQL form known (TRIGGER_FORMS)"
                       % (name, table))
            continue
        forms.add(form)
        kind, ftable, fname = form
        if kind == "constraint":
            found = any(c[0] == ftable and c[1] == fname for c in pg["constraints"])
        else:
            found = pg["triggers"].get(fname) == ftable
        if not found:
            out.append("trigger %s on %s: no %s %s on %s in PostgreSQL"
                       % (name, table, kind, fname, ftable))
    for name, table in sorted(pg["triggers"].items()):
        if ("trigger", table, name) not in forms:
            out.append("trigger %s on %s: only in PostgreSQL" % (name, table))
    return out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    try:
        lite = sqlite_schema(argv[1])
        pg = pg_schema(Pg(argv[2]))
    except (sqlite3.Error, RuntimeError, OSError) as e:
        sys.stderr.write("pg_schema_check: %s\n" % e)
        return 2
    diffs = compare(lite, pg)
    for d in diffs:
        print(d)
    ntab = len(set(lite["tables"]) & set(pg["tables"]))
    ncol = sum(len(t["columns"]) for t in lite["tables"].values())
    print("%s: %d tables, %d columns, %d indexes, %d triggers compared, %d differences"
          % ("FAIL" if diffs else "OK", ntab, ncol, len(lite["indexes"]),
             len(lite["triggers"]), len(diffs)))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
