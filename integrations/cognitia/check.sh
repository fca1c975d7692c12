#!/usr/bin/env bash
# Checks the kit on a real Cognitia checkout:  integrations/cognitia/check.sh PATH_TO_COGNITIA
#
# 1. copies the checkout's backend/open_webui, src and package files to a temporary directory
#    (the checkout itself is never changed) and applies the kit there, twice: the second run
#    must change nothing;
# 2. compiles the patched backend files and runs Cognitia's pricing/budget tests shipped by the
#    kit against them (Open WebUI's app and database replaced by check/cognitia_stubs.py);
# 3. starts the pricing service on a loopback port (its bundled seed snapshot, 1 USD = 4200 COP,
#    no upstream) and, in front of it, the applied checkout's routers/pricing.py (the route the
#    selector calls);
# 4. compiles the patched Selector.svelte and ModelItem.svelte (and what they import from the
#    checkout) with the Svelte compiler, at the versions of Cognitia's package-lock.json, mounts
#    them in jsdom and checks that the rendered selector equals the service's curated view and
#    "Ver todos" equals view=all (check/run.mjs). Not a full Cognitia build (vite, SvelteKit):
#    too heavy here; the selector's own code is compiled as Cognitia's build compiles it.
#
# Needs: this repository's .venv (make install-dev), Node 20 and npm (the npm registry or its
# cache for the selector's dependencies). Every wait is bounded. KEEP=1 keeps the work directory.
set -euo pipefail

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH_TO_COGNITIA" >&2
	exit 2
fi
KIT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$KIT/../.." && pwd)"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
SERVICE="${PRICING_SERVICE_BIN:-$REPO/.venv/bin/pricing-service}"
SRC="$(cd "$1" && pwd)"
SELECTOR=src/lib/components/chat/ModelSelector/Selector.svelte

fail() {
	echo "CHECK FAILED: $*" >&2
	exit 1
}
[ -x "$PYTHON" ] && [ -x "$SERVICE" ] || fail "no $PYTHON or $SERVICE: run 'make install-dev' first"
command -v node >/dev/null && command -v npm >/dev/null || fail "node and npm are needed"
[ -f "$SRC/$SELECTOR" ] && [ -d "$SRC/backend/open_webui" ] && [ -f "$SRC/package-lock.json" ] ||
	fail "$SRC does not look like a Cognitia checkout ($SELECTOR, backend/open_webui, package-lock.json)"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/cognitia-check.XXXXXX")"
PIDS=()
cleanup() {
	for pid in "${PIDS[@]}"; do
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
step() { printf '\n== %s\n' "$*"; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
tree_hash() { (cd "$1" && find . -type f -not -path '*/__pycache__/*' -exec sha256sum {} + | sort | sha256sum); }
# wait_http URL STATUS SECONDS: poll until URL answers STATUS (bounded).
wait_http() {
	"$PYTHON" - "$@" <<'EOF'
import sys, time, urllib.error, urllib.request
url, status, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + seconds
while time.monotonic() < deadline:
    try:
        code = urllib.request.urlopen(url, timeout=2).status
    except urllib.error.HTTPError as exc:
        code = exc.code
    except OSError:
        code = None
    if code == status:
        sys.exit(0)
    time.sleep(0.2)
sys.exit(f"{url} did not answer {status} within {seconds:.0f} s")
EOF
}

step "1. apply the kit to a copy of $SRC"
mkdir -p "$WORK/cognitia/backend"
cp -R "$SRC/backend/open_webui" "$WORK/cognitia/backend/"
cp -R "$SRC/src" "$WORK/cognitia/"
cp "$SRC/package.json" "$SRC/package-lock.json" "$WORK/cognitia/"
"$PYTHON" "$KIT/apply.py" "$WORK/cognitia"
before="$(tree_hash "$WORK/cognitia")"
second="$("$PYTHON" "$KIT/apply.py" "$WORK/cognitia")"
echo "second run: $(grep -c '^unchanged' <<<"$second") files unchanged; $(grep '^already applied' <<<"$second")"
grep -q '^already applied: nothing to change' <<<"$second" || fail "the second run changed something"
[ "$before" = "$(tree_hash "$WORK/cognitia")" ] || fail "the second run wrote files"

step "2. backend: compile the patched files, run Cognitia's tests shipped by the kit"
B="$WORK/cognitia/backend"
"$PYTHON" -m py_compile "$B/open_webui/routers/pricing.py" "$B/open_webui/utils/pricing_budgets.py" \
	"$B/open_webui/main.py"
tests=(open_webui/test/apps/webui/routers/test_pricing.py)
if [ -f "$B/open_webui/utils/budget.py" ]; then
	"$PYTHON" -m py_compile "$B/open_webui/utils/budget.py" "$B/open_webui/routers/openai.py"
	tests+=(open_webui/test/utils/test_budget.py)
fi
cp "$KIT/check/conftest.py" "$B/conftest.py"
printf '[pytest]\nasyncio_default_fixture_loop_scope = function\n' >"$B/pytest.ini"
(cd "$B" && COGNITIA_CHECK_DIR="$KIT/check" timeout 300 "$PYTHON" -m pytest -q -p no:cacheprovider "${tests[@]}")

step "3. the pricing service (bundled seed snapshot, PRICING_USD_TO_COP=4200) and Cognitia's pricing route"
SPORT="$(free_port)"
KPORT="$(free_port)"
service_env=(env -i "PATH=$PATH" "HOME=${HOME:-$WORK}" "DATABASE_URL=sqlite:///$WORK/pricing.db"
	"PRICING_CATALOG_DIR=$REPO/catalog" "PORT=$SPORT" "PRICING_USD_TO_COP=4200"
	"PRICEPERTOKEN_MCP_URL=http://127.0.0.1:9/mcp" "PRICING_REFRESH_ON_STARTUP=false")
(cd "$WORK" && "${service_env[@]}" timeout 120 "$SERVICE" migrate >"$WORK/migrate.log" 2>&1) ||
	fail "migrate: $(tail -5 "$WORK/migrate.log")"
(cd "$WORK" && exec "${service_env[@]}" "$SERVICE" serve >"$WORK/service.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$SPORT/ready" 200 90 || fail "service: $(tail -5 "$WORK/service.log")"
echo "service ready on 127.0.0.1:$SPORT"
(PRICING_SERVICE_URL="http://127.0.0.1:$SPORT" exec "$PYTHON" "$KIT/check/serve_kit.py" "$B" "$KPORT" \
	>"$WORK/kit.log" 2>&1) &
PIDS+=($!)
wait_http "http://127.0.0.1:$KPORT/api/v1/pricing/prices" 401 60 || fail "kit route: $(tail -5 "$WORK/kit.log")"
echo "Cognitia's /api/v1/pricing (the applied router) on 127.0.0.1:$KPORT, a verified user required"

step "4. frontend: the patched selector compiled with the Svelte compiler, mounted in jsdom"
N="$WORK/node"
mkdir -p "$N"
cp -R "$KIT/check/build.mjs" "$KIT/check/run.mjs" "$KIT/check/entry.js" "$KIT/check/stubs" "$N/"
# Cognitia's own versions (its package-lock.json) of what the selector imports; the tools are ours.
node - "$WORK/cognitia/package-lock.json" "$N/package.json" <<'EOF'
const fs = require('fs');
const [lockPath, out] = process.argv.slice(2);
const lock = JSON.parse(fs.readFileSync(lockPath, 'utf8'));
const theirs = ['svelte', 'bits-ui', 'fuse.js', 'marked', 'dayjs', 'svelte-sonner', 'tippy.js', 'dompurify'];
const dependencies = { esbuild: '0.28.2', 'esbuild-svelte': '0.9.5', jsdom: '26.1.0' };
for (const name of theirs) {
	const entry = lock.packages?.[`node_modules/${name}`];
	if (!entry?.version) throw new Error(`${name} is not in Cognitia's package-lock.json`);
	dependencies[name] = entry.version;
}
fs.writeFileSync(out, JSON.stringify({ name: 'cognitia-selector-check', private: true, type: 'module', dependencies }, null, 2));
console.log(Object.entries(dependencies).map(([n, v]) => `${n}@${v}`).join(' '));
EOF
(cd "$N" && timeout 600 npm install --no-audit --no-fund --loglevel=error >"$WORK/npm.log" 2>&1) ||
	fail "npm install: $(tail -5 "$WORK/npm.log")"
(cd "$N" && timeout 300 node build.mjs "$WORK/cognitia" "$N/selector.js")

step "5. the rendered selector against the service"
(cd "$N" && timeout 300 node run.mjs "$N/selector.js" "http://127.0.0.1:$KPORT" "http://127.0.0.1:$SPORT")
echo
echo "CHECK PASSED"
