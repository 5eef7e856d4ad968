package aescbc

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
)

// BlockSize is the AES block size in bytes.
const BlockSize = aes.BlockSize

// Decrypter decrypts AES-128-CBC under one key. It holds the expanded key
// only, so one Decrypter may be used by several goroutines at once.
type Decrypter struct {
	// fast is set when the multi-block assembly path is usable; dec then
	// holds the decryption round keys (the equivalent inverse cipher's:
	// round 10's encryption key first, InvMixColumns applied to rounds
	// 9..1, round 0's key last), 11 × 16 bytes.
	fast  bool
	dec   [11 * BlockSize]byte
	block cipher.Block // the crypto/aes fallback
}

// NewDecrypter expands a 16-byte AES-128 key.
func NewDecrypter(key []byte) (*Decrypter, error) {
	if len(key) != 16 {
		return nil, fmt.Errorf("aescbc: key of %d bytes, AES-128 needs 16", len(key))
	}
	d := &Decrypter{}
	if useAsm {
		expandDecKey128(&key[0], &d.dec)
		d.fast = true
		return d, nil
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	d.block = b
	return d, nil
}

// Decrypt writes the CBC decryption of src under iv to dst. len(src) must be
// a multiple of BlockSize and dst at least as long; dst and src may be the
// same slice (in-place decryption) but must not otherwise overlap, as in
// crypto/cipher.
func (d *Decrypter) Decrypt(dst, src []byte, iv *[BlockSize]byte) {
	if len(src)%BlockSize != 0 {
		panic("aescbc: input not full blocks")
	}
	if len(dst) < len(src) {
		panic("aescbc: output smaller than input")
	}
	if len(src) == 0 {
		return
	}
	if inexactOverlap(dst[:len(src)], src) {
		panic("aescbc: invalid buffer overlap")
	}
	if d.fast {
		decryptCBC128(&d.dec, iv, &dst[0], &src[0], len(src)/BlockSize)
		return
	}
	cipher.NewCBCDecrypter(d.block, iv[:]).CryptBlocks(dst, src)
}

// inexactOverlap reports whether x and y share memory at different offsets.
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	return anyOverlap(x, y)
}
