"""postgresql: installed through the private node's apt proxy, on port 5433, with a role and a
database from data and a pg_hba.conf entry for it; the role logs in over TCP with its password.
A changed pg_hba.conf and role reload the server (its postmaster stays) and correct the role;
the run after that changes nothing."""
from __future__ import annotations

from .relift import changes, lift


SPEC = r'''
(def db
  (group-spec "db"
    :extends [(postgresql/server
                :port 5433
                :hba [{:database "app" :user "app" :address "%(address)s"}]
                :roles {"app" {:password "it's secret" :createdb %(createdb)s}}
                :databases {"app" {:owner "app"}})]))
'''

LOGIN = ("PGPASSWORD=\"it's secret\" psql -X -h 127.0.0.1 -p 5433 -U app -d app -tAc "
         "'select current_user, current_database()'")
POSTMASTER = "head -1 /var/lib/postgresql/15/main/postmaster.pid"


def test_postgresql_role_database_hba(converge):
    result = converge(SPEC % {"address": "127.0.0.1/32", "createdb": "false"}, {"db": 1},
                      network="private")
    node = "db-1"
    assert result.sh(node, "pg_lsclusters -h") .split()[:4] == ["15", "main", "5433", "online"]
    assert result.sh(node, LOGIN) == "app|app\n"
    assert result.sh(node, "grep -c '^host    app             app             127.0.0.1/32' "
                           "/etc/postgresql/15/main/pg_hba.conf") == "1\n"
    postmaster = result.sh(node, POSTMASTER)
    report = lift(result, SPEC % {"address": "127.0.0.0/8", "createdb": "true"})
    assert changes(report) == 3            # pg_hba.conf, the reload, the role
    assert result.sh(node, POSTMASTER) == postmaster
    assert result.sh(node, "su postgres -c \"psql -X -p 5433 -tAc \\\"select rolcreatedb from pg_roles "
                           "where rolname = 'app'\\\"\"") == "t\n"
    assert result.sh(node, LOGIN) == "app|app\n"
    assert changes(lift(result, SPEC % {"address": "127.0.0.0/8", "createdb": "true"})) == 0
