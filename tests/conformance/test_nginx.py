"""nginx: installed through the private node's apt proxy, a site serving files and a site
proxying to it; both answer inside the node. A changed site is tested and reloaded (the master
process stays), and the run after that changes nothing."""
from __future__ import annotations

from .relift import changes, lift


SPEC = r'''
(def web
  (group-spec "web"
    :extends [(nginx/server :sites {"static" {:listen 8080 :root "/srv/www"}
                                    "app" {:listen %(app_port)s :proxy-pass "127.0.0.1:8080"}})]
    :phases {:configure (phase-fn
                          (directory "/srv/www" :mode "755")
                          (remote-file "/srv/www/index.html" :content "<h1>hello from pallet</h1>\n"))}))
'''


def fetch(port: int) -> str:
    return ("python3 -c 'import urllib.request; "
            f"print(urllib.request.urlopen(\"http://127.0.0.1:{port}/\", timeout=5).read().decode(), end=\"\")'")


def test_nginx_sites(converge):
    result = converge(SPEC % {"app_port": 8081}, {"web": 1}, network="private")
    node = "web-1"
    assert result.sh(node, fetch(8080)) == "<h1>hello from pallet</h1>\n"
    assert result.sh(node, fetch(8081)) == "<h1>hello from pallet</h1>\n"   # through the proxy
    assert result.sh(node, "readlink /etc/nginx/sites-enabled/app.conf") == (
        "/etc/nginx/sites-available/app.conf\n")
    assert result.sh(node, "nginx -t 2>&1 | tail -1") == (
        "nginx: configuration file /etc/nginx/nginx.conf test is successful\n")
    master = result.sh(node, "cat /run/nginx.pid")
    # The app site moves: tested and reloaded, not restarted.
    report = lift(result, SPEC % {"app_port": 8082})
    assert changes(report) == 2  # file, reload
    assert result.sh(node, fetch(8082)) == "<h1>hello from pallet</h1>\n"
    assert result.sh(node, "cat /run/nginx.pid") == master
    report = lift(result, SPEC % {"app_port": 8082})
    assert changes(report) == 0
