# Sourced by the bench scripts: `root` (this checkout), `work` (BENCH_DIR,
# or a new temporary folder) and TEXTWATCH_BIN (default: a release build of
# this checkout, built now), and `free_port`.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
if [ -z "${TEXTWATCH_BIN:-}" ]; then
  (cd "$root" && cargo build --release --quiet -p textwatch)
  TEXTWATCH_BIN="$root/target/release/textwatch"
fi

# A TCP port free on loopback now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
