"""cron: one file per job in /etc/cron.d (checked as files: the nodes run no cron daemon)."""
from __future__ import annotations

SPEC = r'''
(def app
  (group-spec "app"
    :extends [(cron/server :jobs {"backup" {:schedule "30 2 * * *" :user "root"
                                            :command "/usr/local/bin/backup --date=$(date +%F)"
                                            :environment {"MAILTO" ""}}})]
    :phases {:install (phase-fn)   ; no cron daemon: the nodes reach no package mirror
             :configure (phase-fn (cron/job "report" :schedule [0 "*/6" "*" "*" "1-5"]
                                            :user "nobody" :command "echo report"))}))
'''


def test_cron_jobs(converge):
    result = converge(SPEC, {"app": 1}, phases=("configure",))
    node = "app-1"
    assert result.sh(node, "cat /etc/cron.d/backup") == (
        "# Managed by Pallet (cron crate): backup\n"
        "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "MAILTO=\"\"\n"
        "30 2 * * * root /usr/local/bin/backup --date=$(date +\\%F)\n")
    assert result.sh(node, "tail -n 1 /etc/cron.d/report") == "0 */6 * * 1-5 nobody echo report\n"
    assert result.sh(node, "stat -c '%a %U %G' /etc/cron.d/backup /etc/cron.d/report") == (
        "644 root root\n644 root root\n")
