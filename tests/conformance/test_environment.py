"""environment: a block of /etc/environment (a line outside it for the same variable goes),
and a profile.d script; both seen by a login."""
from __future__ import annotations

SPEC = r'''
(def app
  (group-spec "app"
    :extends [(environment/server :variables {"APP_ENV" "production" "GREETING" "hello world"})]
    :phases {:configure (phase-fn
                          (environment/environment {"JAVA_HOME" "/usr/lib/jvm/default"
                                                    "MOTTO" "it's \"fine\""}
                                                   :profile "java"))}))
'''


def test_environment(converge):
    result = converge(SPEC, {"app": 1})
    node = "app-1"
    assert result.sh(node, "cat /etc/environment") == (
        "# BEGIN pallet environment\nAPP_ENV=production\nGREETING=\"hello world\"\n"
        "# END pallet environment\n")
    assert result.sh(node, "stat -c '%a %U' /etc/environment /etc/profile.d/java.sh") == (
        "644 root\n644 root\n")
    # pam_env gives a login the block; a login shell runs the profile script
    login = result.sh(node, "su - root -c 'printf \"%s|%s|%s|%s\\n\" \"$APP_ENV\" \"$GREETING\" \"$JAVA_HOME\" \"$MOTTO\"'")
    assert login == "production|hello world|/usr/lib/jvm/default|it's \"fine\"\n", login


def test_environment_replaces_other_lines_for_its_variables(converge):
    spec = r'''
(def app
  (group-spec "app"
    :phases {:configure (phase-fn
                          (exec-checked-script "an image's own line" :creates "/etc/environment.orig"
                            (printf "%s\\n" "LANG=C.UTF-8" ">>" "/etc/environment")
                            (printf "%s\\n" "APP_ENV=development" ">>" "/etc/environment")
                            (touch "/etc/environment.orig"))
                          (environment/environment {"APP_ENV" "production"}))}))
'''
    result = converge(spec, {"app": 1})
    assert result.sh("app-1", "cat /etc/environment") == (
        "LANG=C.UTF-8\n# BEGIN pallet environment\nAPP_ENV=production\n# END pallet environment\n")
