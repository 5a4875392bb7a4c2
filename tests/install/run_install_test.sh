#!/usr/bin/env bash
# The installed package works for a program outside this tree
# (cmake/shardwire_install.cmake, docs/install.md):
#   1. `cmake --install` into a scratch prefix puts the CMake package, the
#      pkg-config file, the headers and the libraries there;
#   2. docs/examples, configured as a project of its own against that prefix
#      with find_package(shardwire), builds, and each program runs (--help);
#   3. one example built with nothing but `pkg-config --cflags --libs`;
#   4. `cpack -G DEB` builds a package holding the same files, with its
#      dependencies declared.
# Usage: run_install_test.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== install into $prefix"
cmake --install "$build" --prefix "$prefix" > "$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "cmake --install"; }
for f in lib/cmake/shardwire/shardwireConfig.cmake \
         lib/cmake/shardwire/shardwireConfigVersion.cmake \
         lib/cmake/shardwire/shardwireTargets.cmake \
         lib/cmake/shardwire/FindCAF.cmake \
         lib/pkgconfig/shardwire.pc \
         include/shardwire/runtime/runtime.hpp \
         include/shardwire/transports/tcp.hpp \
         include/shardwire/tools/fault_proxy.hpp \
         include/shardwire/sim/network.hpp \
         lib/libshardwire_runtime.a lib/libshardwire_transports.a \
         lib/libshardwire_asio.a; do
  [[ -e $prefix/$f ]] || fail "not installed: $f"
done
echo "ok: package files in place"

echo "== docs/examples against the installed package"
cmake -S "$src/docs/examples" -B "$tmp/examples" -G Ninja \
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$prefix" \
  > "$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "configure docs/examples"; }
cmake --build "$tmp/examples" -j "${CTEST_JOBS:-2}" > "$tmp/build.log" 2>&1 ||
  { tail -50 "$tmp/build.log"; fail "build docs/examples"; }
# Nothing of the source tree may be needed: the include paths must point
# into the prefix.
if grep -q -- "-I$src" "$tmp/examples/build.ninja"; then
  fail "the examples' include paths reach into the source tree"
fi
for ex in echo_server hello_client supervised_workers; do
  "$tmp/examples/$ex" --help > "$tmp/$ex.help" 2>&1 ||
    fail "$ex --help exited $?"
  grep -q -- "--help" "$tmp/$ex.help" || fail "$ex --help printed no usage"
done
echo "ok: examples built with find_package(shardwire) and run"

echo "== pkg-config"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
flags=$(pkg-config --cflags --libs shardwire) || fail "pkg-config shardwire"
# shellcheck disable=SC2086
g++ -O1 "$src/docs/examples/hello_client.cpp" $flags -o "$tmp/hello_pc" \
  2> "$tmp/pc.log" || { tail -30 "$tmp/pc.log"; fail "g++ with pkg-config"; }
"$tmp/hello_pc" --help > /dev/null 2>&1 || fail "hello_client (pkg-config) --help"
echo "ok: built with pkg-config alone"

echo "== cpack -G DEB"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/deb" \
  > "$tmp/cpack.log" 2>&1) || { tail -30 "$tmp/cpack.log"; fail "cpack"; }
deb=$(ls "$tmp"/deb/*.deb | head -1)
[[ -f $deb ]] || fail "no .deb produced"
dpkg-deb --contents "$deb" > "$tmp/contents"
for f in usr/lib/cmake/shardwire/shardwireConfig.cmake \
         usr/lib/pkgconfig/shardwire.pc \
         usr/include/shardwire/runtime/runtime.hpp \
         usr/lib/libshardwire_transports.a; do
  grep -q "\./$f\$" "$tmp/contents" || fail "$f missing from $(basename "$deb")"
done
depends=$(dpkg-deb -f "$deb" Depends)
[[ $depends == *libcaf-dev* && $depends == *libasio-dev* ]] ||
  fail "Depends lacks CAF or Asio: $depends"
echo "ok: $(basename "$deb") ($(du -h "$deb" | cut -f1)), Depends: $depends"
