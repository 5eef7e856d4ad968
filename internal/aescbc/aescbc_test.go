package aescbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"math/rand/v2"
	"testing"
)

// reference is crypto/cipher's CBC decryption of src.
func reference(t testing.TB, key []byte, iv [BlockSize]byte, src []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(src))
	cipher.NewCBCDecrypter(b, iv[:]).CryptBlocks(out, src)
	return out
}

func randomBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// Every length from 0 to 40 blocks (the 8-block loop, the tail and both
// together) and a few large ones, under random keys and IVs, decrypts to
// crypto/cipher's bytes, into a fresh buffer and in place.
func TestDecryptMatchesCryptoCipher(t *testing.T) {
	if !useAsm {
		t.Log("no AES-NI assembly on this machine: testing the crypto/cipher fallback only")
	}
	r := rand.New(rand.NewPCG(1, 2))
	lengths := []int{}
	for n := 0; n <= 40; n++ {
		lengths = append(lengths, n)
	}
	lengths = append(lengths, 1000, 4096+3, 65536)
	for _, blocks := range lengths {
		for trial := range 3 {
			key := randomBytes(r, 16)
			var iv [BlockSize]byte
			copy(iv[:], randomBytes(r, BlockSize))
			src := randomBytes(r, blocks*BlockSize)
			want := reference(t, key, iv, src)
			d, err := NewDecrypter(key)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]byte, len(src))
			d.Decrypt(got, src, &iv)
			if !bytes.Equal(got, want) {
				t.Fatalf("%d blocks, trial %d: decryption differs from crypto/cipher", blocks, trial)
			}
			inPlace := bytes.Clone(src)
			d.Decrypt(inPlace, inPlace, &iv)
			if !bytes.Equal(inPlace, want) {
				t.Fatalf("%d blocks, trial %d: in-place decryption differs from crypto/cipher", blocks, trial)
			}
		}
	}
}

// FIPS-197 appendix C.1's AES-128 vector, as one CBC block with a zero IV.
func TestDecryptFIPS197Vector(t *testing.T) {
	key := []byte{0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f}
	ct := []byte{0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4, 0xc5, 0x5a}
	want := []byte{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	d, err := NewDecrypter(key)
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 16)
	d.Decrypt(got, ct, &[BlockSize]byte{})
	if !bytes.Equal(got, want) {
		t.Fatalf("got %x, want %x", got, want)
	}
}

func TestDecryptRefusesBadArguments(t *testing.T) {
	d, err := NewDecrypter(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewDecrypter(make([]byte, 24)); err == nil {
		t.Fatal("a 24-byte key was accepted; this package is AES-128 only")
	}
	buf := make([]byte, 64)
	var iv [BlockSize]byte
	for name, call := range map[string]func(){
		"partial block":   func() { d.Decrypt(buf, buf[:17], &iv) },
		"short output":    func() { d.Decrypt(buf[:16], buf[:32], &iv) },
		"shifted overlap": func() { d.Decrypt(buf[16:48], buf[:32], &iv) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			call()
		}()
	}
}

// FuzzDecrypt compares with crypto/cipher on arbitrary keys, IVs and
// ciphertexts (truncated to whole blocks).
func FuzzDecrypt(f *testing.F) {
	f.Add(make([]byte, 16), make([]byte, 16), make([]byte, 16*9))
	f.Fuzz(func(t *testing.T, key, ivb, src []byte) {
		if len(key) != 16 || len(ivb) != 16 {
			return
		}
		src = src[:len(src)/BlockSize*BlockSize]
		var iv [BlockSize]byte
		copy(iv[:], ivb)
		d, err := NewDecrypter(key)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(src))
		d.Decrypt(got, src, &iv)
		if want := reference(t, key, iv, src); !bytes.Equal(got, want) {
			t.Fatal("decryption differs from crypto/cipher")
		}
	})
}

// BenchmarkDecrypt compares this package with crypto/cipher's CBC on the
// same bytes (sample shard-sized segments and 1 MiB), in place.
func BenchmarkDecrypt(b *testing.B) {
	key := make([]byte, 16)
	var iv [BlockSize]byte
	blk, _ := aes.NewCipher(key)
	d, _ := NewDecrypter(key)
	for _, n := range []int{94_400, 1 << 20} {
		buf := make([]byte, n)
		b.Run(fmt.Sprintf("%dB/aescbc", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				d.Decrypt(buf, buf, &iv)
			}
		})
		b.Run(fmt.Sprintf("%dB/crypto-cipher", n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				cipher.NewCBCDecrypter(blk, iv[:]).CryptBlocks(buf, buf)
			}
		})
	}
}
