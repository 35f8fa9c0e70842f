"""ssh-key: generate a key, authorize it on another group's nodes (the talk's relationship)."""

SPEC = r'''
(def base (server-spec :phases {:configure (phase-fn (user "deploy" :create-home true :shell "/bin/sh"))}))
(def ci (group-spec "ci" :extends [base]
          :phases {:configure (phase-fn (ssh-key/generate-key "deploy")
                                        (ssh-key/publish-public-key "deploy"))}))
(def app (group-spec "app" :extends [base]
           :phases {:authorize (phase-fn (doseq [n (nodes-in-group :ci)]
                                           (when-let [k (published n :ssh-public-key)]
                                             (ssh-key/authorize-key "deploy" k))))}))
'''


def test_ssh_key_generate_publish_authorize(converge):
    result = converge(SPEC, {"ci": 1, "app": 2}, phases=("configure", "authorize"))
    public = result.sh("ci-1", "cat /home/deploy/.ssh/id_ed25519.pub")
    assert public.startswith("ssh-ed25519 ") and public.rstrip().endswith("deploy@ci-1")
    assert result.sh("ci-1", "stat -c '%a %U' /home/deploy/.ssh /home/deploy/.ssh/id_ed25519") == (
        "700 deploy\n600 deploy\n")
    for node in ("app-1", "app-2"):
        assert result.sh(node, "cat /home/deploy/.ssh/authorized_keys") == public
        assert result.sh(node, "stat -c '%U' /home/deploy/.ssh/authorized_keys") == "deploy\n"
