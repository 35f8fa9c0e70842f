#!/bin/sh
# @TITLE@
PALLET_HEADER=@HEADER@
[ -f "$0" ] && [ "$(wc -c < "$0")" -lt "$PALLET_HEADER" ] &&
  { printf '%s: truncated inside its header; nothing was run\n' "$0" >&2; exit 1; }
# Made by pallet @VERSION@ from @SPEC@. Check it BEFORE running it, outside this file:
#   pallet verify @RUNFILE@ --allowed-signers FILE
#   ssh-keygen -Y verify -f FILE -I ID -n pallet-bundle -s @RUNFILE@.sig < @RUNFILE@
# Then, as root: sh @RUNFILE@ [--check | --list | --info | --extract DIR | --help]
# This header checks the payload's sha256 before it writes anything, unpacks the scripts
# into a private directory, runs the phases in order and removes the directory on exit.
# (The lines above stop a file cut short inside this header before it does anything.)
# Layout: this header (PALLET_HEADER bytes), a gzip'd tar of the phases' scripts
# (PALLET_SCRIPTS bytes), a tar of OS packages (PALLET_PACKAGES bytes, maybe none), the
# files remote-file downloads, end to end (PALLET_DOWNLOADS bytes, maybe none).
PALLET_SCRIPTS=@SCRIPTS@
PALLET_PACKAGES=@PACKAGES@
PALLET_DOWNLOADS=@DOWNLOADS@
PALLET_UNPACKED_KB=@UNPACKED_KB@
PALLET_SHA256=@SHA256@
PALLET_NODE=@NODE@
PALLET_GROUP=@GROUP@
PALLET_OS=@OS@
PALLET_PHASES=@PHASES@
PALLET_SHELLS=@SHELLS@
PALLET_SPEC=@SPEC_Q@
PALLET_SPEC_SHA256=@SPEC_SHA256@
PALLET_PACKAGE_COUNT=@PACKAGE_COUNT@
PALLET_DOWNLOAD_COUNT=@DOWNLOAD_COUNT@
PALLET_REPO=@REPO@
PALLET_VERSION=@VERSION_Q@

umask 077
LC_ALL=C
export LC_ALL
me=$0
mode=run
dest=
target=
keep=0
quiet=0
only=
dir=
url=

say() { printf '%s\n' "$*" >&2; }
die() { code=$1; shift; say "$me: $*"; exit "$code"; }

usage() {
  cat <<EOF
$me: Pallet offline bundle for node $PALLET_NODE ($PALLET_OS), phases: $PALLET_PHASES
usage: sh $me [option...]
  (none)          check the payload, unpack it privately, run every phase, clean up
  --check         check the payload's size and sha256 only; unpack nothing
  --list          check, then list every file with its size and sha256
  --info          print what the bundle is for (node, group, OS, phases, spec, payload)
  --extract DIR   check, then unpack scripts and packages into DIR (nothing runs)
  --phase P       run only phase P (repeatable; in the bundle's order)
  --target DIR    unpack under DIR instead of \$TMPDIR, /tmp or /var/tmp
  --keep          keep the unpacked directory (its path is printed)
  --quiet         print only errors (the exit status tells the rest)
  --help          this text
exit status: 0 done, 1 the file fails its check, 2 bad usage, else the failed phase's status
EOF
}

while [ $# -gt 0 ]; do
  case $1 in
    --check) mode=check ;;
    --list) mode=list ;;
    --info) mode=info ;;
    --help|-h) mode=help ;;
    --keep) keep=1 ;;
    --quiet|-q) quiet=1 ;;
    --extract|--target|--phase|--unpack-packages)
      [ $# -ge 2 ] && [ -n "$2" ] || die 2 "$1 needs a value (see --help)"
      case $1 in
        --extract) mode=extract; dest=$2 ;;
        --unpack-packages) mode=unpack; dest=$2 ;;
        --target) target=$2 ;;
        --phase)
          case " $PALLET_PHASES " in
            *" ${2#:} "*) only="$only ${2#:}" ;;
            *) die 2 "--phase $2: this bundle has the phases $PALLET_PHASES" ;;
          esac ;;
      esac
      shift ;;
    --unpack-download)
      [ $# -ge 3 ] && [ -n "$2" ] && [ -n "$3" ] || die 2 "$1 needs a URL and a file"
      mode=download; url=$2; dest=$3
      shift 2 ;;
    *) die 2 "unknown option $1 (see --help)" ;;
  esac
  shift
done

case $mode in
  help) usage; exit 0 ;;
  info)
    printf 'node:     %s\ngroup:    %s\nos:       %s\nphases:   %s\n' \
      "$PALLET_NODE" "$PALLET_GROUP" "$PALLET_OS" "$PALLET_PHASES"
    printf 'spec:     %s (sha256 %s)\npayload:  sha256 %s\n' \
      "$PALLET_SPEC" "$PALLET_SPEC_SHA256" "$PALLET_SHA256"
    printf 'sizes:    header %s, scripts %s, packages %s bytes (%s packages), downloads %s bytes (%s files)\n' \
      "$PALLET_HEADER" "$PALLET_SCRIPTS" "$PALLET_PACKAGES" "$PALLET_PACKAGE_COUNT" \
      "$PALLET_DOWNLOADS" "$PALLET_DOWNLOAD_COUNT"
    printf 'created:  pallet %s\n' "$PALLET_VERSION"
    exit 0 ;;
esac

[ -f "$me" ] && [ -r "$me" ] || die 2 "cannot read myself: run the file itself, as: sh FILE.run"
self=$me
case $self in /*) ;; *) self=$(pwd)/$self ;; esac

# The payload of the scripts, of the packages, and one download's bytes (OFFSET SIZE, as
# downloads.list gives them) (tail: from an offset; head: a count).
scripts() { tail -c +$((PALLET_HEADER + 1)) "$self" | head -c "$PALLET_SCRIPTS"; }
packages() { tail -c +$((PALLET_HEADER + PALLET_SCRIPTS + 1)) "$self" | head -c "$PALLET_PACKAGES"; }
download() { tail -c +$((PALLET_HEADER + PALLET_SCRIPTS + PALLET_PACKAGES + $1 + 1)) "$self" | head -c "$2"; }

# Unpacks the packages into $1 (called by the package step, and only when a package is
# missing: the check below has covered them already, and apt checks each against the index).
if [ "$mode" = unpack ]; then
  [ "$PALLET_PACKAGES" -gt 0 ] || exit 0
  packages | tar -x -m -o -f - -C "$dest" || die 125 "cannot unpack the packages into $dest"
  exit 0
fi

# Writes the content of the URL into the file $dest (called by remote-file's step, only
# when the file's content differs; the step checks the content against its checksum).
if [ "$mode" = download ]; then
  list=$(scripts | gzip -dc | tar -x -O -f - downloads.list 2>/dev/null) || list=
  while read -r offset size sum from; do
    if [ -n "$sum" ] && [ "$from" = "$url" ]; then
      download "$offset" "$size" > "$dest" || die 125 "cannot write $dest"
      exit 0
    fi
  done <<EOF
$list
EOF
  die 1 "$url: not carried by this bundle (only what was downloaded when bundling is)"
fi

# The fastest sha256 the node has: OpenSSL's (openssl, python3's hashlib) uses the CPU's
# SHA instructions, coreutils' sha256sum does not (it takes about three times as long).
sha256() {
  if command -v openssl >/dev/null 2>&1; then openssl dgst -sha256 -r
  elif command -v python3 >/dev/null 2>&1; then python3 -c 'import hashlib, sys
h = hashlib.sha256()
for block in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
    h.update(block)
print(h.hexdigest())'
  elif command -v sha256sum >/dev/null 2>&1; then sha256sum
  elif command -v shasum >/dev/null 2>&1; then shasum -a 256
  else die 1 "no openssl, python3, sha256sum or shasum here to check the payload with"
  fi
}

# The whole file is checked before anything is written: its size, then its payload's sha256.
have=$(wc -c < "$self") || die 1 "cannot read myself"
have=$((have + 0))
want=$((PALLET_HEADER + PALLET_SCRIPTS + PALLET_PACKAGES + PALLET_DOWNLOADS))
if [ "$have" -lt "$want" ]; then
  die 1 "truncated: $have bytes, expected $want; nothing was run"
elif [ "$have" -gt "$want" ]; then
  die 1 "$((have - want)) bytes too many (appended to?): expected $want; nothing was run"
fi
sum=$(tail -c +$((PALLET_HEADER + 1)) "$self" | sha256) || die 1 "cannot read myself"
sum=${sum%% *}
[ "$sum" = "$PALLET_SHA256" ] || die 1 "the payload's sha256 is $sum, expected $PALLET_SHA256: the file was changed or damaged; nothing was run"
if [ "$mode" = check ]; then
  [ "$quiet" = 1 ] || say "$me: ok: $want bytes, payload sha256 $PALLET_SHA256"
  exit 0
fi

if [ "$mode" = list ]; then
  scripts | gzip -dc | tar -x -O -f - FILES || die 1 "cannot read the file list"
  exit 0
fi

if [ "$mode" = extract ]; then
  mkdir -p -- "$dest" || die 2 "cannot make $dest"
  [ -z "$(ls -A -- "$dest")" ] || die 2 "$dest is not empty"
  scripts | gzip -dc | tar -x -m -o -f - -C "$dest" || die 125 "cannot unpack into $dest"
  if [ "$PALLET_PACKAGES" -gt 0 ]; then
    packages | tar -x -m -o -f - -C "$dest/repo" || die 125 "cannot unpack into $dest/repo"
  fi
  if [ "$PALLET_DOWNLOADS" -gt 0 ]; then
    mkdir -p -- "$dest/downloads" || die 125 "cannot make $dest/downloads"
    while read -r offset size sum from; do
      [ -n "$sum" ] || continue
      download "$offset" "$size" > "$dest/downloads/$sum" || die 125 "cannot unpack into $dest/downloads"
    done < "$dest/downloads.list"
  fi
  [ "$quiet" = 1 ] || say "$me: unpacked into $dest"
  exit 0
fi

# A private directory where there is room and programs may run: --target, else $TMPDIR,
# /tmp, /var/tmp (a /tmp that is full or mounted noexec is passed over, saying so).
# shellcheck disable=SC2329  # called by the EXIT trap
cleanup() {
  cd / || :
  if [ -n "$dir" ]; then
    if [ "$keep" = 1 ]; then say "$me: kept $dir"; else rm -rf -- "$dir"; fi
  fi
}
trap 'status=$?; cleanup; exit "$status"' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

usable() {
  [ -d "$1" ] && [ -w "$1" ] || { why="not a writable directory"; return 1; }
  free=$(df -Pk -- "$1" 2>/dev/null | awk 'NR == 2 { print $4 }')
  if [ -n "$free" ] && [ "$free" -lt "$PALLET_UNPACKED_KB" ]; then
    why="$free KiB free, $PALLET_UNPACKED_KB KiB needed"; return 1
  fi
  d=$(mktemp -d "$1/pallet-run.XXXXXXXXXX" 2>/dev/null) || { why="cannot make a directory"; return 1; }
  if ! { printf '#!/bin/sh\nexit 0\n' > "$d/probe" && chmod 700 "$d/probe" &&
          "$d/probe"; } 2>/dev/null; then
    rm -rf -- "$d"; why="mounted noexec, or full"; return 1
  fi
  rm -f -- "$d/probe"
  dir=$d
}
if [ -n "$target" ]; then
  usable "$target" || die 2 "--target $target: $why"
else
  for base in "${TMPDIR:-}" /tmp /var/tmp; do
    [ -n "$base" ] || continue
    usable "$base" && break
    [ "$quiet" = 1 ] || say "$me: not unpacking in $base: $why"
  done
  [ -n "$dir" ] || die 125 "no directory to unpack in (try --target DIR)"
fi

scripts | gzip -dc | tar -x -m -o -f - -C "$dir" || die 125 "cannot unpack into $dir"
umask 022
# The scripts take what this file carries from it (packages, downloads), through these.
PALLET_RUN_FILE=$self
export PALLET_RUN_FILE
if [ "$PALLET_REPO" = 1 ]; then
  PALLET_PACKAGE_REPO=$dir/repo
  export PALLET_PACKAGE_REPO
fi

run=${only:-$PALLET_PHASES}
# shellcheck disable=SC2086  # split on purpose: a word per phase
set -- $PALLET_SHELLS
for phase in $PALLET_PHASES; do
  shell=$1
  shift
  case " $run " in *" $phase "*) ;; *) continue ;; esac
  [ "$quiet" = 1 ] || printf 'PALLET-PHASE %s\n' "$phase"
  if [ "$quiet" = 1 ]; then
    (cd "$dir/$phase" && PALLET_BUNDLE_DIR=$dir/$phase exec "$shell" ./run.sh) </dev/null >/dev/null
  else
    (cd "$dir/$phase" && PALLET_BUNDLE_DIR=$dir/$phase exec "$shell" ./run.sh) </dev/null
  fi
  status=$?
  [ "$status" -eq 0 ] || die "$status" "phase $phase failed (exit status $status)"
done
exit 0
