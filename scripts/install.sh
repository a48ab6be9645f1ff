#!/bin/sh
# Builds and installs the privseg C library:
#
#   PREFIX/lib/libprivseg.so.MAJOR.MINOR.PATCH   shared library, SONAME libprivseg.so.SOVERSION
#   PREFIX/lib/libprivseg.so.SOVERSION, libprivseg.so   symbolic links
#   PREFIX/lib/libprivseg.a                      static library
#   PREFIX/include/privseg.h, privseg.hpp        C header, C++17 wrapper
#   PREFIX/lib/pkgconfig/privseg.pc              for pkg-config
#   PREFIX/lib/cmake/privseg/privsegConfig.cmake (and ...ConfigVersion.cmake) for find_package
#
# SOVERSION is MAJOR, or MAJOR.MINOR while MAJOR is 0 (Cargo's compatibility
# rule: 0.1 and 0.2 are incompatible).
#
# Usage: scripts/install.sh [--debug] PREFIX
#   --debug   build without optimisations (faster to build; for tests)
# Honours CARGO (the cargo to run) and CARGO_TARGET_DIR; DESTDIR is
# prepended to every installed path, for packagers.
set -eu

profile=release
case "${1:-}" in
  --debug) profile=debug; shift ;;
esac
if [ $# -ne 1 ] || [ -z "$1" ]; then
  echo "usage: $0 [--debug] PREFIX" >&2
  exit 2
fi
case "$1" in
  /*) prefix=$1 ;;
  *) prefix=$(pwd)/$1 ;;
esac

root=$(cd "$(dirname "$0")/.." && pwd)
cargo=${CARGO:-cargo}
target_dir=${CARGO_TARGET_DIR:-$root/target}
case "$target_dir" in
  /*) ;;
  *) target_dir=$root/$target_dir ;;
esac

version=$(sed -n 's/^version = "\([^"]*\)".*/\1/p' "$root/Cargo.toml" | head -n 1)
major=${version%%.*}
rest=${version#*.}
minor=${rest%%.*}
if [ "$major" = 0 ]; then soversion=$major.$minor; else soversion=$major; fi
soname=libprivseg.so.$soversion

release_flag=
[ "$profile" = release ] && release_flag=--release

log=$(mktemp)
trap 'rm -f "$log"' EXIT
echo "building libprivseg ($profile)..." >&2
# The note rustc prints with --print native-static-libs lists what the
# static library needs from the system; it goes into Libs.private.
if ! (cd "$root" && CARGO_TARGET_DIR=$target_dir "$cargo" rustc --lib $release_flag \
      --crate-type cdylib,staticlib -- \
      -C "link-arg=-Wl,-soname,$soname" --print native-static-libs) >"$log" 2>&1; then
  cat "$log" >&2
  echo "error: building the library failed" >&2
  exit 1
fi
native=$(sed -n 's/.*native-static-libs: //p' "$log" | tail -n 1)
if [ -z "$native" ]; then
  cat "$log" >&2
  echo "error: rustc did not print the native static libraries" >&2
  exit 1
fi

out=$target_dir/$profile
dest=${DESTDIR:-}$prefix
libdir=$dest/lib
incdir=$dest/include
mkdir -p "$libdir/pkgconfig" "$libdir/cmake/privseg" "$incdir"

install -m 0755 "$out/libprivseg.so" "$libdir/libprivseg.so.$version"
ln -sf "libprivseg.so.$version" "$libdir/$soname"
ln -sf "$soname" "$libdir/libprivseg.so"
install -m 0644 "$out/libprivseg.a" "$libdir/libprivseg.a"
install -m 0644 "$root/include/privseg.h" "$root/include/privseg.hpp" "$incdir/"

cat >"$libdir/pkgconfig/privseg.pc" <<PC
prefix=$prefix
exec_prefix=\${prefix}
libdir=\${exec_prefix}/lib
includedir=\${prefix}/include

Name: privseg
Description: Privacy-compliant customer segmentation (GDPR/CCPA): C ABI
URL: https://github.com/privseg/privseg
Version: $version
Libs: -L\${libdir} -lprivseg
Libs.private: $native
Cflags: -I\${includedir}
PC

# CMake: privseg::privseg (shared) and privseg::privseg_static, found
# relative to this file so the prefix can be moved.
cmake_libs=$(printf '%s\n' $native | sed -n 's/^-l//p' | tr '\n' ';' | sed 's/;$//')
cat >"$libdir/cmake/privseg/privsegConfig.cmake" <<CMAKE
# privseg $version: imported targets privseg::privseg (shared library)
# and privseg::privseg_static (static library with its system libraries).
get_filename_component(_privseg_prefix "\${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT TARGET privseg::privseg)
  add_library(privseg::privseg SHARED IMPORTED)
  set_target_properties(privseg::privseg PROPERTIES
    IMPORTED_LOCATION "\${_privseg_prefix}/lib/libprivseg.so.$version"
    IMPORTED_SONAME "$soname"
    INTERFACE_INCLUDE_DIRECTORIES "\${_privseg_prefix}/include")
endif()
if(NOT TARGET privseg::privseg_static)
  add_library(privseg::privseg_static STATIC IMPORTED)
  set_target_properties(privseg::privseg_static PROPERTIES
    IMPORTED_LOCATION "\${_privseg_prefix}/lib/libprivseg.a"
    INTERFACE_INCLUDE_DIRECTORIES "\${_privseg_prefix}/include"
    INTERFACE_LINK_LIBRARIES "$cmake_libs")
endif()
unset(_privseg_prefix)
CMAKE

cat >"$libdir/cmake/privseg/privsegConfigVersion.cmake" <<CMAKE
# Compatible when the major version matches (major and minor while the
# major is 0) and the version asked for is not newer.
set(PACKAGE_VERSION "$version")
set(PACKAGE_VERSION_COMPATIBLE FALSE)
if(NOT PACKAGE_FIND_VERSION VERSION_GREATER PACKAGE_VERSION
   AND PACKAGE_FIND_VERSION_MAJOR EQUAL $major
   AND ($major GREATER 0 OR PACKAGE_FIND_VERSION_MINOR EQUAL $minor))
  set(PACKAGE_VERSION_COMPATIBLE TRUE)
endif()
if(PACKAGE_FIND_VERSION VERSION_EQUAL PACKAGE_VERSION)
  set(PACKAGE_VERSION_EXACT TRUE)
endif()
CMAKE

echo "installed privseg $version in $dest" >&2
