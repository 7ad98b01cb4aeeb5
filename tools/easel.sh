#!/usr/bin/env bash
# tools/easel.sh: set up a Debian 12 machine, build Easel, and run it or its tests.
#
#   bash tools/easel.sh run    install what is missing (apt-get), build, run the main job
#   bash tools/easel.sh test   install what is missing, build, run every test suite:
#                              unit + golden, the same under ASan/UBSan, and the libFuzzer targets
#   bash tools/easel.sh build  install what is missing and build (build/)
#
# Run as root or with sudo available. Binaries: build/app/easel-cli.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$here"

packages=(
  build-essential pkg-config meson ninja-build clang lld llvm
  libglib2.0-dev libpng-dev zlib1g-dev libopenblas-dev
  libgtk-4-dev libadwaita-1-dev
  libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers
  xvfb xauth dbus-daemon desktop-file-utils appstream gettext
)

install_missing () {
  local missing=()
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" -eq 0 ] || sudo=(sudo)
  echo "==> installing: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# setup DIR [meson options...]: configure once, reconfigure when options change
setup () {
  local dir=$1; shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}

build () {
  setup build
  ninja -C build
}

# Sums the results of the meson test logs given and prints the closing line.
summary () {
  python3 - "$@" <<'PY'
import json, sys
ok = fail = skip = 0
for path in sys.argv[1:]:
    try:
        lines = open(path).read().splitlines()
    except OSError:
        continue
    for line in lines:
        r = json.loads(line).get("result")
        if r in ("OK", "EXPECTEDFAIL"): ok += 1
        elif r == "SKIP": skip += 1
        else: fail += 1
print(f"tests: {ok} passed, {fail} failed, {skip} skipped")
PY
}

run_tests () {
  local status=0 logs=()
  build
  echo "==> unit, golden, ui and vulkan suites"
  meson test -C build --suite unit --suite golden --suite ui --suite vulkan --print-errorlogs || status=1
  logs+=(build/meson-logs/testlog.json)

  echo "==> unit and golden suites under AddressSanitizer + UndefinedBehaviorSanitizer"
  # the GTK app is left out here: its libraries' own leaks are not ours to chase
  setup build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dgui=disabled
  ninja -C build-asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    meson test -C build-asan --suite unit --suite golden --print-errorlogs --timeout-multiplier 3 || status=1
  logs+=(build-asan/meson-logs/testlog.json)

  echo "==> fuzz suite (libFuzzer, clang)"
  if [ -f build-fuzz/build.ninja ]; then
    meson configure build-fuzz -Dfuzzing=true -Dgui=disabled >/dev/null
  else
    CC=clang meson setup build-fuzz -Dfuzzing=true -Db_lundef=false -Dgui=disabled
  fi
  ninja -C build-fuzz
  meson test -C build-fuzz --suite fuzz --print-errorlogs || status=1
  logs+=(build-fuzz/meson-logs/testlog.json)

  summary "${logs[@]}"
  return $status
}

main_job () {
  build
  local cli=build/app/easel-cli
  if [ -x build/app/easel ] && { [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; }; then
    echo "==> build/app/easel (the window)"
    exec build/app/easel
  fi
  echo "==> $cli --version"
  "$cli" --version
  # No display: one generation, with the built-in demo model unless $EASEL_MODEL names a checkpoint.
  echo "==> $cli generate -p 'a lighthouse on a cliff at sunset' -o easel-output.png"
  "$cli" generate -p "a lighthouse on a cliff at sunset" -o easel-output.png
  "$cli" inspect easel-output.png
}

case "${1:-run}" in
  run) install_missing; main_job ;;
  test) install_missing; run_tests ;;
  build) install_missing; build ;;
  *) echo "usage: $0 run|test|build" >&2; exit 2 ;;
esac
