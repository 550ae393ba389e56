# Sourced by demo.sh and test.sh: the one definition of each build folder's configuration. Every option a
# script depends on is stated here, so whichever script ran first, the next one gets the build it expects
# (demo then tests, or tests then demo, share build/ and its compiled objects).
# ccache (when installed) shares compiled objects between checkouts of this repository in different folders.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR=1
# Precompiled headers (libtorch's): ccache caches their users only with these (its manual, "Precompiled headers").
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-pch_defines,time_macros,include_file_mtime,include_file_ctime}"

configure_release() {  # $1: build folder
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSEGSCALE_WITH_TORCH=ON -DSEGSCALE_SANITIZE=OFF \
    -DSEGSCALE_FUZZ=OFF -DSEGSCALE_BUILD_TESTS=ON -DSEGSCALE_BUILD_BENCH=ON >/dev/null
}
configure_asan() {  # $1: build folder. libtorch stays out of the sanitizer build (its code is not ours to check).
  cmake -S . -B "$1" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DSEGSCALE_WITH_TORCH=OFF -DSEGSCALE_SANITIZE=ON \
    -DSEGSCALE_FUZZ=OFF -DSEGSCALE_BUILD_TESTS=ON -DSEGSCALE_BUILD_BENCH=OFF >/dev/null
}
# Runs ctest in folder $1 (extra arguments follow); an empty test list is a failure, and the count is printed.
run_ctest() {
  local dir=$1; shift
  local n
  n=$(cd "$dir" && ctest -N | sed -n 's/^Total Tests: //p')
  echo "$dir: ${n:-0} tests"
  (cd "$dir" && ctest --no-tests=error --output-on-failure -j "$(nproc)" "$@")
}
