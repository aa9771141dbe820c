/* The BPF target has no asm/ headers of its own: the generic types are its. */
#include <asm-generic/types.h>
