import time, pytest, MySQLdb
from dbcopy.dialects import mysql as my
from dbcopy.runner import Runner
from tests import helpers as h
from tests.test_faults import seed_categories, kill_backend, backend_id, CATEGORY
from django.db import connections

def loader_ids():
    c = MySQLdb.connect(host="127.0.0.1", user="root", password="")
    cur = c.cursor(); cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'LOAD DATA%'")
    ids = [r[0] for r in cur.fetchall()]; c.close(); return ids

@pytest.mark.parametrize("victim", ["loader", "source", "dest"])
@pytest.mark.parametrize("source,dest", [h.pair("pg_a", "mysql_b")])
def test_x(source, dest, victim, monkeypatch, report_path):
    monkeypatch.setattr(my, "_STREAM_REPORT_EVERY", 50)
    seed_categories(source, 3000)
    original = Runner.progress
    st = {"n": 0}
    def progress(self, event, step, **data):
        if event == "start":
            st["source"] = backend_id(source); st["dest"] = backend_id(dest)
        if event == "chunk" and step is not None and step.label == CATEGORY:
            st["n"] += 1
            if st["n"] == 2:
                t = time.monotonic()-T[0]
                if victim == "loader":
                    ids = loader_ids()
                    c = MySQLdb.connect(host="127.0.0.1", user="root", password="")
                    for i in ids: c.cursor().execute(f"KILL {i}")
                    c.close()
                else:
                    kill_backend(source if victim == "source" else dest, st[victim])
                print("killed", victim, t)
        return original(self, event, step, **data)
    monkeypatch.setattr(Runner, "progress", progress)
    T=[time.monotonic()]
    r = h.dbcopy("copy", CATEGORY, source=source, dest=dest, report_json=report_path, verbosity=2)
    print("took", time.monotonic()-T[0]); print(r)
