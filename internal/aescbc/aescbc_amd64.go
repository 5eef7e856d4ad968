//go:build amd64 && !purego

package aescbc

import "golang.org/x/sys/cpu"

// useAsm: AESDEC, AESIMC and AESKEYGENASSIST are AES-NI; the rest is SSE2.
var useAsm = cpu.X86.HasAES && cpu.X86.HasSSE2

// expandDecKey128 writes the AES-128 decryption round keys of key (16
// bytes) to dec, in the order decryptCBC128 applies them.
//
//go:noescape
func expandDecKey128(key *byte, dec *[11 * BlockSize]byte)

// decryptCBC128 decrypts blocks 16-byte blocks from src to dst (which may
// be equal, not otherwise overlapping) under dec, chaining from iv.
//
//go:noescape
func decryptCBC128(dec *[11 * BlockSize]byte, iv *[BlockSize]byte, dst, src *byte, blocks int)
