#!/usr/bin/env bash
# The wheel as a user gets it: built by maturin, installed into a clean venv with its
# declared dependencies only (no extras), then `invreq serve` from that venv answers one real
# invoicerequest over its unix socket, and `--signer hwi` without hwilib is one line.
# Needs .venv (for maturin): run after `make lint` or `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

work=$(mktemp -d)
server_pid=
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> wheel: maturin build --release"
.venv/bin/maturin build --release --locked --quiet --interpreter "$PYTHON" --out "$work/wheels" \
  >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(ls "$work"/wheels/invreq-*.whl)
echo "==> wheel: installing $(basename "$wheel") into a clean venv (no extras)"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt "$wheel"

cd "$work"  # nothing from the checkout on sys.path
# What running needs and nothing else: no test tools, no optional paths.
"$work/venv/bin/python" - <<'PY'
import importlib.util
extra = [m for m in ("pytest", "hwilib", "asyncpg", "pyln", "mypy") if importlib.util.find_spec(m)]
assert not extra, f"installed without being asked for: {extra}"
PY

port=$("$work/venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
echo "==> wheel: invreq serve --network regtest --http-port $port"
"$work/venv/bin/invreq" serve --data-dir "$work/data" --network regtest --http-port "$port" \
  >"$work/serve.log" 2>&1 &
server_pid=$!
sock="$work/data/regtest/lightning-rpc"
for _ in $(seq 600); do
  [ -S "$sock" ] && grep -q "^invreq regtest: unix socket" "$work/serve.log" && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log"; echo "wheel: invreq serve exited" >&2; exit 1; }
  sleep 0.1
done
[ -S "$sock" ] || { cat "$work/serve.log"; echo "wheel: invreq serve did not start" >&2; exit 1; }

# One request over plain sockets, as lightning-cli sends it; the reply ends with a blank line.
"$work/venv/bin/python" - "$sock" <<'PY'
import json
import socket
import sys

from invreq import bolt12

request = {
    "jsonrpc": "2.0",
    "id": "wheel-smoke-1",
    "method": "invoicerequest",
    "params": {"amount": "1000sat", "description": "wheel smoke"},
}
with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
    s.connect(sys.argv[1])
    s.sendall(json.dumps(request).encode())
    buf = b""
    while b"\n\n" not in buf:
        data = s.recv(65536)
        assert data, f"connection closed before a reply: {buf!r}"
        buf += data
reply = json.loads(buf.split(b"\n\n")[0])
assert reply["id"] == "wheel-smoke-1" and "result" in reply, reply
made = bolt12.decode_invoice_request(reply["result"]["bolt12"])
assert (made.amount_msat, made.description) == (1_000_000, "wheel smoke"), made
print("==> wheel: invoicerequest answered:", reply["result"]["invreq_id"])
# The payee page and its static files come with the wheel.
import urllib.request
page = urllib.request.urlopen(reply["result"]["page_url"]).read().decode()
assert "<svg" in page and "payee.js" in page, page[:500]
static = reply["result"]["page_url"].split("/r/")[0] + "/static/payee.js"
assert b"EventSource" in urllib.request.urlopen(static).read()
print("==> wheel: payee page served:", reply["result"]["page_url"])
PY
"$work/venv/bin/invreq" call --data-dir "$work/data" getinfo -H --network regtest | grep -qx 'network=regtest'

kill -TERM "$server_pid"
wait "$server_pid" || { cat "$work/serve.log"; echo "wheel: invreq serve did not exit 0 on SIGTERM" >&2; exit 1; }
server_pid=

# The hardware path is optional: asking for it without hwilib is one line saying what to do.
code=0
"$work/venv/bin/invreq" serve --data-dir "$work/data" --network regtest --http-port 0 \
  --signer hwi --hwi-fingerprint 00000000 2>"$work/hwi.err" >/dev/null || code=$?
err=$(grep -v ' INFO ' "$work/hwi.err" || true)
[ "$code" -eq 1 ] && [ "$(echo "$err" | wc -l)" -eq 1 ] \
  && echo "$err" | grep -q "^invreq serve: --signer hwi needs hwilib, which is not installed: pip install 'invreq\[hwi\]'" \
  || { echo "wheel: --signer hwi without hwilib: exit $code, $(cat "$work/hwi.err")" >&2; exit 1; }
echo "==> wheel: ok (built, installed clean, served one request, --signer hwi explained)"
