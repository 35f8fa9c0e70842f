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

# action -> its keyword options, in the order error messages list them.
ACTION_OPTIONS: dict[str, tuple[str, ...]] = {
    "file": ("owner", "group", "mode", "action", "force"),
    "directory": ("owner", "group", "mode", "recursive", "action"),
    "symbolic-link": ("owner", "group", "action", "force"),
    "remote-file": ("content", "local-file", "template", "values", "url", "sha256", "owner",
                    "group", "mode", "action", "force", "no-versioning"),
    "user": ("home", "shell", "system", "create-home", "groups", "comment", "uid", "action"),
    "group": ("system", "gid", "action"),
    "service": ("action", "if-config-changed"),
    "sed": ("separator", "seperator"),
    "package": ("action", "version"),
    "packages": ("action", *PACKAGER_KEYS),
    "package-manager": (),
    "package-source": SOURCE_KEYS,
    "exec-script": ("creates", "unless"),
    "exec-checked-script": ("creates", "unless"),
}
