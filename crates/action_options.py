"""The options each core action accepts: one table, read by the evaluator (compiler/plan.py,
which rejects an unknown option where it is written, with a suggestion) and by the renderer
(crates/actions.py, which gives them their meaning per OS). Kept free of imports, so that
the evaluator can read it without loading the renderer.
"""
from __future__ import annotations

# The keys of (packages :apt [...] :yum [...]) and the packagers each serves.
PACKAGER_KEYS: dict[str, frozenset[str]] = {
    "apt": frozenset({"apt"}), "aptitude": frozenset({"apt"}),
    "yum": frozenset({"yum", "dnf"}), "dnf": frozenset({"dnf"}),
    "apk": frozenset({"apk"}), "pacman": frozenset({"pacman"}),
    "zypper": frozenset({"zypper"}), "choco": frozenset({"choco"}),
}

# The keys of (package-source name :apt {...} :yum {...}).
SOURCE_KEYS: tuple[str, ...] = ("apt", "aptitude", "yum", "dnf", "zypper", "apk")

# Every action that can report `changed` raises the flags of :flag-on-changed when it did; the
# actions that can wait for a change read them (:if-flag), or the paths earlier actions of the
# phase wrote (:if-changed; :if-config-changed: any file an earlier action wrote).
FLAG = ("flag-on-changed",)
WAITS = ("if-flag", "if-changed")

# action -> its keyword options, in the order error messages list them.
ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "file": ("owner", "group", "mode", "action", "force", *FLAG),
    "directory": ("owner", "group", "mode", "recursive", "action", *FLAG),
    "symbolic-link": ("owner", "group", "action", "force", *FLAG),
    "remote-file": ("content", "local-file", "template", "values", "url", "sha256", "sha512",
                    "owner",
                    "group", "mode", "action", "force", "overwrite-changes", "backups",
                    "no-versioning", "diff", "secret", *FLAG),
    "user": ("home", "shell", "system", "create-home", "groups", "comment", "uid", "action",
             *FLAG),
    "group": ("system", "gid", "action", *FLAG),
    "service": ("action", *WAITS, "if-config-changed", *FLAG),
    "sed": ("separator", "seperator", *FLAG),
    "package": ("action", "version", *FLAG),
    "packages": ("action", *PACKAGER_KEYS, *FLAG),
    "package-manager": (),
    "package-source": (*SOURCE_KEYS, *FLAG),
    "exec-script": ("creates", "unless", *WAITS, *FLAG),
    "exec-checked-script": ("creates", "unless", *WAITS, *FLAG),
}
