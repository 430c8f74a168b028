#!/usr/bin/env python3
"""Which tables and indexes the WAL frames of a running SQLite store belong to.

Every page a commit changes is written to the WAL as one frame (4 KiB plus
a header), so frames per message are what the durable path's commits cost
the disk. This snapshots a live database and its `-wal` file (copies, so
the server keeps running), walks the frames of the WAL's current generation,
and maps each page to its table or index with SQLite's `dbstat` table.
It prints, per B-tree, the frames and the distinct pages per commit, and
the frames per message (the inbox rows added since the last checkpoint,
counted in the database with and without the WAL).

    python3 bench/wal-pages.py /tmp/run.db

Run it while a load runs on that file, e.g. during
`SWITCHYARD_BIN=... loadgen 1000 sqlite:///tmp/run.db --rounds=4`, a few
seconds in. Pages allocated since the snapshot's checkpoint are named by
where they are now; a page freed and reused in between may be misnamed.
"""
import collections, os, shutil, sqlite3, struct, sys, tempfile

if len(sys.argv) != 2:
    sys.exit("usage: bench/wal-pages.py DATABASE_FILE")
db = sys.argv[1]
if not os.path.exists(db + "-wal"):
    sys.exit(f"bench/wal-pages.py: {db}-wal does not exist: the store must be in WAL mode and open")
work = tempfile.mkdtemp()
snap, bare = os.path.join(work, "snap.db"), os.path.join(work, "bare.db")
# The WAL first: frames appended after this copy are not in it, and the
# database file only changes at a checkpoint.
shutil.copy(db + "-wal", snap + "-wal")
shutil.copy(db, snap)
shutil.copy(db, bare)

data = open(snap + "-wal", "rb").read()
if len(data) < 32:
    sys.exit("bench/wal-pages.py: the WAL is empty (just checkpointed?): try again")
_, _, page_size, _, salt1, salt2 = struct.unpack(">IIIIII", data[:24])
frames = []  # (page number, database size after commit or 0)
offset = 32
while offset + 24 + page_size <= len(data):
    page, size, frame_salt1, frame_salt2 = struct.unpack(">IIII", data[offset:offset + 16])
    if (frame_salt1, frame_salt2) != (salt1, salt2):
        break  # an older generation's frame: the current one ends here
    frames.append((page, size))
    offset += 24 + page_size
while frames and frames[-1][1] == 0:
    frames.pop()  # a commit still being written
commits = sum(1 for _, size in frames if size)
if not commits:
    sys.exit("bench/wal-pages.py: no whole commit in the WAL yet: try again")

connection = sqlite3.connect(snap)
try:
    owner = dict(connection.execute("SELECT pageno, name FROM dbstat"))
except sqlite3.OperationalError as err:
    sys.exit(f"bench/wal-pages.py: this Python's SQLite has no dbstat table ({err})")
messages = connection.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]
bare_connection = sqlite3.connect(f"file:{bare}?immutable=1", uri=True)
messages -= bare_connection.execute("SELECT COUNT(*) FROM inbox").fetchone()[0]

written = collections.Counter(owner.get(page, "(new or free)") for page, _ in frames)
distinct = collections.Counter()
pages = set()
for page, size in frames:
    pages.add(page)
    if size:
        distinct.update(owner.get(page, "(new or free)") for page in pages)
        pages = set()
print(f"{len(frames)} frames in {commits} commits ({len(frames) / commits:.1f} per commit), page size {page_size}")
if messages > 0:
    print(f"{messages} inbox rows since the last checkpoint: {len(frames) / messages:.1f} frames and "
          f"{messages / commits:.1f} messages per commit")
print(f"{'table or index':40} {'frames':>7} {'share':>6} {'pages per commit':>17}")
for name, count in written.most_common():
    print(f"{name:40} {count:7} {100 * count / len(frames):5.1f}% {distinct[name] / commits:17.2f}")
shutil.rmtree(work)
