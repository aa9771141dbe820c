package ebpf

// The program's object and its Go bindings are generated and committed, so that
// `go build` needs no clang; CI regenerates them and checks that nothing changed.
// Pinned: clang 14 (Debian's clang-14), the flags below, bpf2go from go.mod's
// cilium/ebpf; bpf2go strips DWARF and maps the source directory away, so the
// object holds no path of the machine that built it.
//go:generate go tool bpf2go -cc clang-14 -strip llvm-strip-14 -target bpfel -tags linux -go-package ebpf -output-stem fastpath fastpath bpf/fastpath.c -- -O2 -g -Wall -Werror -Ibpf/include
