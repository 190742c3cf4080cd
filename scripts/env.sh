# Sourced by scripts/test, scripts/dev and .ci/run: installs what the build needs when it is
# missing and points the build at a persistent, shared target directory.
#
# - clang + libclang-dev: bindgen for librocksdb-sys; ccache: RocksDB's C++ is compiled once
#   (about 25 minutes on 2 cores) and then reused by every profile and every clone;
#   prometheus: promtool, for the metrics and alert-rule tests; chromium: the headless browser
#   of the dashboard test.
# - CARGO_TARGET_DIR outside the checkout, so a fresh clone reuses the warm build.

export PATH="$HOME/.cargo/bin:$PATH"

meridian_missing=()
command -v clang >/dev/null 2>&1 || meridian_missing+=(clang)
ls /usr/lib/llvm-*/lib/libclang.so* >/dev/null 2>&1 || meridian_missing+=(libclang-dev)
command -v ccache >/dev/null 2>&1 || meridian_missing+=(ccache)
# promtool (Debian's prometheus package) checks /metrics and the alert rules in the tests.
command -v promtool >/dev/null 2>&1 || meridian_missing+=(prometheus)
# chromium (Debian's package) loads /dashboard headless in tests/dashboard_browser.rs.
command -v chromium >/dev/null 2>&1 || meridian_missing+=(chromium)
# libfaketime: clock skew on one node in tests/chaos_processes.rs.
ls /usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1 >/dev/null 2>&1 || meridian_missing+=(libfaketime)
if [ ${#meridian_missing[@]} -gt 0 ]; then
  echo "installing build dependencies: ${meridian_missing[*]}" >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${meridian_missing[@]}" >/dev/null
fi

export MERIDIAN_CACHE="${MERIDIAN_CACHE:-/var/cache/meridian}"
if ! mkdir -p "$MERIDIAN_CACHE" 2>/dev/null || [ ! -w "$MERIDIAN_CACHE" ]; then
  MERIDIAN_CACHE="$HOME/.cache/meridian"
  mkdir -p "$MERIDIAN_CACHE"
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$MERIDIAN_CACHE/target}"
export CCACHE_DIR="${CCACHE_DIR:-$MERIDIAN_CACHE/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
export CC="ccache cc" CXX="ccache c++"
