#!/usr/bin/env bash
# Installs the peers the fan-out benchmark measures the edge against (make bench-peers),
# idempotently, pinned where the source allows it:
#   - nginx with the nchan module, and Pushpin: Debian packages; their services are NOT
#     started by the install (a policy-rc.d refuses it): the benchmark starts its own
#     copies on 127.0.0.1 with its own configs, and stops them by PID;
#   - Centrifugo: `go install github.com/centrifugal/centrifugo/v6@$CENTRIFUGO_VERSION`.
# Adds their paths to $GAMEDAY_CACHE_DIR/peers.json. A peer that cannot be had is left
# out of peers.json with the reason, and the benchmark says so in its table.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${GAMEDAY_CACHE_DIR:-$HOME/.cache/gameday}
mkdir -p "$cache/bin"

say() { printf 'setup-peers: %s\n' "$*"; }

missing=()
[[ -f /usr/share/nginx/modules-available/mod-http-nchan.conf || -f /usr/lib/nginx/modules/ngx_nchan_module.so ]] \
  || missing+=(nginx-light libnginx-mod-nchan)
command -v pushpin >/dev/null 2>&1 || missing+=(pushpin)
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    say "needs root to install: ${missing[*]}"; exit 1
  fi
  say "installing Debian packages: ${missing[*]} (their services are not started)"
  policy=/usr/sbin/policy-rc.d
  created_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
    >"$cache/apt-peers.log" 2>&1 || say "apt-get install failed (see $cache/apt-peers.log)"
  ((created_policy)) && rm -f "$policy"
fi

centrifugo="$cache/bin/centrifugo-$CENTRIFUGO_VERSION"
centrifugo_error=""
if [[ ! -x $centrifugo ]] && command -v go >/dev/null 2>&1; then
  say "building Centrifugo $CENTRIFUGO_VERSION with go install"
  gobin=$(mktemp -d)
  if GOBIN=$gobin GOFLAGS=-mod=mod go install "github.com/centrifugal/centrifugo/v6@v$CENTRIFUGO_VERSION" \
      >"$cache/go-centrifugo.log" 2>&1; then
    mv "$gobin/centrifugo" "$centrifugo"
  else
    centrifugo_error="go install failed: $(tail -1 "$cache/go-centrifugo.log")"
  fi
  rm -rf "$gobin"
fi

nchan_module=$(ls /usr/lib/nginx/modules/ngx_nchan_module.so 2>/dev/null || true)
python3 - "$cache/peers.json" <<EOF
import json, shutil, subprocess, sys
def debian(package):
    """The installed Debian package's version, as the benchmark reports it."""
    found = subprocess.run(["dpkg-query", "-W", "-f", "\${Version}", package],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() or "unknown"
peers = {}
nginx = shutil.which("nginx") or "/usr/sbin/nginx"
if "$nchan_module" and shutil.os.path.exists(nginx):
    peers["nchan"] = {"nginx": nginx, "module": "$nchan_module",
                      "version": debian("libnginx-mod-nchan"), "nginx_version": debian("nginx-light")}
pushpin = shutil.which("pushpin")
if pushpin:
    peers["pushpin"] = {"pushpin": pushpin, "version": debian("pushpin")}
if shutil.os.path.exists("$centrifugo"):
    peers["centrifugo"] = {"centrifugo": "$centrifugo", "version": "$CENTRIFUGO_VERSION"}
missing = {"centrifugo": "$centrifugo_error"} if "$centrifugo_error" else {}
json.dump({"peers": peers, "missing": missing}, open(sys.argv[1], "w"), indent=2)
EOF
say "peers: $(python3 -c 'import json,sys; print(", ".join(json.load(open(sys.argv[1]))["peers"]) or "none")' "$cache/peers.json")"
