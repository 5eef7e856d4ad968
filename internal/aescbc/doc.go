// Package aescbc is AES-128-CBC decryption that keeps up with the rest of
// the player's path: on amd64 with AES-NI it decrypts eight blocks at once,
// since CBC decryption has no chain (plaintext block i is D(C_i) ⊕ C_{i-1},
// so every D(C_i) is independent), and AESDEC's latency, not its
// throughput, is what bounds one block at a time.
//
// Why not crypto/cipher: Go 1.26's cipher.NewCBCDecrypter over aes.NewCipher
// decrypts one block per assembly call on amd64
// (crypto/internal/fips140/aes.cryptBlocksDecGeneric; only s390x and ppc64
// have a multi-block CBC), which is about 1 GB/s here and was more than half
// of the player's verify + decrypt time. Elsewhere (other architectures, no
// AES-NI, the purego tag) Decrypter uses crypto/cipher, so results are the
// same bytes everywhere; the tests compare both on random inputs.
package aescbc
