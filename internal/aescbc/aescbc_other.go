//go:build !amd64 || purego

package aescbc

const useAsm = false

func expandDecKey128(*byte, *[11 * BlockSize]byte) { panic("aescbc: no assembly on this platform") }

func decryptCBC128(*[11 * BlockSize]byte, *[BlockSize]byte, *byte, *byte, int) {
	panic("aescbc: no assembly on this platform")
}
