#!/usr/bin/env bash
# Installs everything gameday needs on this machine, idempotently, with pinned versions:
#   - Debian packages: redis-server, redis-sentinel, prometheus (+ promtool), prometheus-alertmanager,
#     chromium (the scoreboard page is tested in a real browser)
#   - the Apache Kafka broker and its runtime jars, from Maven Central (infra/pom.xml)
#   - the Toxiproxy server, built by `go install` from the Go module proxy
#   - .venv/ with gameday installed (editable) and the dev tools, pinned by infra/constraints.txt
# and writes $GAMEDAY_CACHE_DIR/tools.json, the manifest gameday reads to find them.
# A second run with nothing to do takes about a second.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${GAMEDAY_CACHE_DIR:-$HOME/.cache/gameday}
mkdir -p "$cache"

say() { printf 'setup: %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

# --- Debian packages ---------------------------------------------------------------------
declare -A need=(
  [redis-server]=redis-server [redis-sentinel]=redis-sentinel
  [prometheus]=prometheus [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [java]=default-jre-headless [mvn]=maven
  [chromium]=chromium
)
missing=()
for bin in "${!need[@]}"; do
  command -v "$bin" >/dev/null 2>&1 || missing+=("${need[$bin]}")
done
if ((${#missing[@]})); then
  pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
  say "installing Debian packages: $pkgs"
  if [[ $(id -u) -ne 0 ]]; then
    die "these packages are missing and installing them needs root: sudo apt-get update && sudo apt-get install -y --no-install-recommends $pkgs"
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >"$cache/apt-get.log" 2>&1 || die "apt-get update failed (see $cache/apt-get.log)"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $pkgs >>"$cache/apt-get.log" 2>&1 \
    || die "apt-get install $pkgs failed (see $cache/apt-get.log)"
fi
redis_v=$(redis-server --version | sed -n 's/.* v=\([0-9.]*\).*/\1/p')
[[ ${redis_v%%.*} == "$REDIS_MAJOR" ]] || die "redis-server $redis_v found, gameday needs Redis $REDIS_MAJOR.x"
prom_v=$(prometheus --version 2>&1 | sed -n 's/^prometheus, version \([0-9.]*\).*/\1/p')
[[ ${prom_v%%.*} == "$PROMETHEUS_MAJOR" ]] || die "prometheus $prom_v found, gameday needs Prometheus $PROMETHEUS_MAJOR.x"
am_v=$(prometheus-alertmanager --version 2>&1 | sed -n 's/^alertmanager, version \([0-9.]*\).*/\1/p')

# --- Kafka from Maven Central ------------------------------------------------------------
grep -q "<kafka.version>$KAFKA_VERSION</kafka.version>" "$here/pom.xml" \
  || die "infra/pom.xml and infra/versions.env disagree on the Kafka version"
kafka_dir="$cache/kafka-$KAFKA_VERSION"
pom_sum=$(sha256sum "$here/pom.xml" | cut -d' ' -f1)
if [[ $(cat "$kafka_dir/.complete" 2>/dev/null) != "$pom_sum" ]]; then
  say "fetching Apache Kafka $KAFKA_VERSION from Maven Central into $kafka_dir"
  rm -rf "$kafka_dir.tmp" && mkdir -p "$kafka_dir.tmp"
  mvn_log="$cache/mvn.log"
  mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DexcludeArtifactIds=jmx_prometheus_javaagent -DoutputDirectory="$kafka_dir.tmp/libs" >"$mvn_log" 2>&1 \
    && mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DincludeArtifactIds=jmx_prometheus_javaagent \
      -DexcludeTransitive=true -DoutputDirectory="$kafka_dir.tmp/agent" >>"$mvn_log" 2>&1 \
    || die "mvn could not resolve Kafka $KAFKA_VERSION (see $mvn_log)"
  echo "$pom_sum" >"$kafka_dir.tmp/.complete"
  rm -rf "$kafka_dir" && mv "$kafka_dir.tmp" "$kafka_dir"
fi
jmx_agent=$(ls "$kafka_dir"/agent/jmx_prometheus_javaagent-*.jar)

# --- Toxiproxy from the Go module proxy --------------------------------------------------
toxiproxy="$cache/bin/toxiproxy-server-$TOXIPROXY_VERSION"
if [[ ! -x $toxiproxy ]]; then
  command -v go >/dev/null 2>&1 || die "Go is needed to build the Toxiproxy server (go install); install Go 1.22 or newer"
  say "building Toxiproxy $TOXIPROXY_VERSION with go install"
  gobin=$(mktemp -d)
  GOBIN=$gobin GOFLAGS=-mod=mod go install \
      -ldflags "-X github.com/Shopify/toxiproxy/v2.Version=$TOXIPROXY_VERSION" \
      "github.com/Shopify/toxiproxy/v2/cmd/server@v$TOXIPROXY_VERSION" >"$cache/go.log" 2>&1 \
    || die "go install of Toxiproxy $TOXIPROXY_VERSION failed (see $cache/go.log)"
  mkdir -p "$cache/bin" && mv "$gobin/server" "$toxiproxy" && rm -rf "$gobin"
fi

# --- the Python environment --------------------------------------------------------------
venv="$repo/.venv"
py_sum=$(cat "$repo/pyproject.toml" "$here/constraints.txt" | sha256sum | cut -d' ' -f1)
if [[ $(cat "$venv/.gameday-installed" 2>/dev/null) != "$py_sum" ]]; then
  python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "Python 3.11 or newer is needed as python3"
  say "installing gameday into $venv"
  [[ -x $venv/bin/python ]] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$here/constraints.txt" -e "$repo[dev]" \
    >"$cache/pip.log" 2>&1 || die "pip install failed (see $cache/pip.log)"
  echo "$py_sum" >"$venv/.gameday-installed"
fi

# --- the manifest gameday reads ----------------------------------------------------------
cat >"$cache/tools.json.tmp" <<JSON
{
  "java": "$(command -v java)",
  "kafka_version": "$KAFKA_VERSION",
  "kafka_libs": "$kafka_dir/libs",
  "jmx_agent": "$jmx_agent",
  "toxiproxy_version": "$TOXIPROXY_VERSION",
  "toxiproxy_server": "$toxiproxy",
  "redis_version": "$redis_v",
  "redis_server": "$(command -v redis-server)",
  "redis_sentinel": "$(command -v redis-sentinel)",
  "prometheus_version": "$prom_v",
  "prometheus": "$(command -v prometheus)",
  "promtool": "$(command -v promtool)",
  "alertmanager_version": "$am_v",
  "alertmanager": "$(command -v prometheus-alertmanager)",
  "chromium": "$(command -v chromium)"
}
JSON
mv "$cache/tools.json.tmp" "$cache/tools.json"
say "ready: Kafka $KAFKA_VERSION, Redis $redis_v, Toxiproxy $TOXIPROXY_VERSION, Prometheus $prom_v, Alertmanager $am_v"
