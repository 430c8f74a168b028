#!/usr/bin/env python3
"""`rollout status` (the drain view, `Db::version_status`) at a million
sessions: its SQL before and after, A B A B on the same store, medians.

    python3 bench/drain-view.py [POSTGRES_URL]

SQLite: a fresh file under /tmp with every migration of
crates/store/migrations/sqlite, 1 000 000 sessions (4 flows, 3 versions,
30 days of starts, the last 2 000 live), no ANALYZE (the store runs none),
timed through Python's sqlite3. PostgreSQL (when POSTGRES_URL, the server's
maintenance database, is given): a fresh database with every migration, the
same rows, VACUUM ANALYZE (autovacuum would), timed as EXPLAIN ANALYZE's
execution time through psql; the database is dropped afterwards.
The queries are copied from crates/store/src/report.rs (old: before
this change; new: VERSION_STATUS_SQLITE / VERSION_STATUS_POSTGRES).
"""
import glob, os, sqlite3, statistics, subprocess, sys, time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FLOW, SINCE = "digital_certificate", 1766588400000  # the last hour of the seeded starts
OLD = ("SELECT version, COUNT(*) FILTER (WHERE outcome IS NULL) AS live, MAX(CASE WHEN outcome IS NULL THEN expires_at END) AS last_expiry, "
       "COUNT(*) FILTER (WHERE started_at >= {since}) AS recent FROM sessions WHERE flow = '{flow}' GROUP BY version ORDER BY version")
NEW = ("SELECT c.version, c.live, (SELECT MAX(s.expires_at) FROM sessions s WHERE s.outcome IS NULL AND {plus}s.flow = '{flow}' AND {plus}s.version = c.version) AS last_expiry, "
       "(SELECT COUNT(*) FROM sessions s WHERE s.flow = '{flow}' AND s.version = c.version AND s.started_at >= {since}) AS recent "
       "FROM (SELECT version, CAST(SUM(CASE WHEN outcome = 'live' THEN sessions ELSE 0 END) AS BIGINT) AS live "
       "FROM session_counts WHERE flow = '{flow}' GROUP BY version HAVING SUM(sessions) > 0) AS c ORDER BY c.version")
ROWS = ("SELECT 's' || i, 'vendas', '55119' || {pad}, "
        "CASE i % 10 WHEN 0 THEN 'billing' WHEN 1 THEN 'billing' WHEN 2 THEN 'general_support' WHEN 3 THEN 'digital_certificate' "
        "WHEN 4 THEN 'digital_certificate' ELSE 'unknown' END, 1 + (i / 7) % 3, 'fp', 'active', 'step', '{{}}', 0, 3, "
        "1764000000000 + i * 2592, 1764000000000 + i * 2592, 1764000000000 + i * 2592 + 1800000, "
        "CASE WHEN i >= 998000 THEN NULL ELSE 'completed' END, CASE WHEN i >= 998000 THEN NULL ELSE 1764000000000 + i * 2592 + 60000 END, 1, 0")
COLUMNS = ("INSERT INTO sessions (id, instance, contact, flow, version, fingerprint, reason, step, data, attempts, turns, started_at, "
           "last_input_at, expires_at, outcome, ended_at, revision, depth) ")
SAMPLES = 7


def report(name, old, new):
    print(f"{name}: old median {statistics.median(old):.3f} ms {[round(x, 2) for x in old]}")
    print(f"{name}: new median {statistics.median(new):.3f} ms {[round(x, 2) for x in new]}")


def sqlite():
    path = f"/tmp/drain-view-{os.getpid()}.db"
    con = sqlite3.connect(path, isolation_level=None)
    for migration in sorted(glob.glob(os.path.join(ROOT, "crates/store/migrations/sqlite/*.sql"))):
        con.executescript(open(migration).read())
    con.execute("PRAGMA journal_mode = WAL")
    con.execute("PRAGMA synchronous = OFF")
    started = time.time()
    con.execute(COLUMNS + "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 999999) "
                + ROWS.format(pad="printf('%08d', i)") + " FROM n")
    print(f"sqlite {sqlite3.sqlite_version}: seeded 1 000 000 sessions in {time.time() - started:.0f} s")
    old_sql, new_sql = OLD.format(flow=FLOW, since=SINCE), NEW.format(flow=FLOW, since=SINCE, plus="+")
    assert con.execute(old_sql).fetchall() == con.execute(new_sql).fetchall(), "the two answer alike"
    old, new = [], []
    for _ in range(SAMPLES):
        for sql, into in ((old_sql, old), (new_sql, new)):
            begun = time.perf_counter()
            con.execute(sql).fetchall()
            into.append((time.perf_counter() - begun) * 1000)
    report("sqlite", old, new)
    con.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def postgres(server):
    db = f"drain_view_{os.getpid()}"
    url = server.rsplit("/", 1)[0] + "/" + db
    psql = lambda target, *args: subprocess.run(["psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", target, *args], check=True, capture_output=True, text=True).stdout
    psql(server, "-c", f"CREATE DATABASE {db}")
    try:
        for migration in sorted(glob.glob(os.path.join(ROOT, "crates/store/migrations/postgres/*.sql"))):
            psql(url, "-f", migration)
        started = time.time()
        psql(url, "-c", COLUMNS + ROWS.format(pad="lpad(i::text, 8, '0')").replace("i * 2592", "i::bigint * 2592") + " FROM generate_series(0, 999999) AS i")
        psql(url, "-c", "VACUUM ANALYZE")
        print(f"postgres: seeded 1 000 000 sessions in {time.time() - started:.0f} s")
        old_sql = OLD.format(flow=FLOW, since=f"{SINCE}::bigint")
        new_sql = NEW.format(flow=FLOW, since=f"{SINCE}::bigint", plus="")
        assert psql(url, "-c", old_sql) == psql(url, "-c", new_sql), "the two answer alike"
        execution = lambda sql: float(psql(url, "-c", f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}").split('"Execution Time": ')[1].split()[0].rstrip(","))
        old, new = [], []
        for _ in range(SAMPLES):
            old.append(execution(old_sql))
            new.append(execution(new_sql))
        report("postgres", old, new)
    finally:
        psql(server, "-c", f"DROP DATABASE {db}")


if __name__ == "__main__":
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()}")
    sqlite()
    if len(sys.argv) > 1:
        postgres(sys.argv[1])
