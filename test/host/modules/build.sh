#!/bin/sh
# Rebuilds the host conformance modules with Debian's clang, lld and wasi-libc
# (apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32). The built .wasm files are committed,
# so tests need no C toolchain; run this after changing a source.
set -eu
cd "$(dirname "$0")"
CC=${CC:-clang}
# Freestanding modules: no libc, every import and export spelled out in the source.
free() { "$CC" --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o "$1.wasm" "$1.c"; }
# wasi-libc modules: a reactor (_initialize) or a command (_start), exporting libc's malloc.
wasi() { "$CC" --target=wasm32-wasi --sysroot=/usr -O2 -mexec-model="$2" -Wl,--export=malloc -o "$1.wasm" "$1.c"; }
for m in lifecycle abi_010 pause_callout response_reply emscripten_wasi_unstable; do free "$m"; done
wasi reactor_clock reactor
wasi malloc_start command
