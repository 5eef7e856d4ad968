package content

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"runtime"
)

// ContentKey is a video's AES-128 key (standard HLS METHOD=AES-128). Only the
// publisher's store and entitled players hold it; edges cache ciphertext only.
type ContentKey [16]byte

// NewContentKey draws a fresh random key.
func NewContentKey() (ContentKey, error) {
	var k ContentKey
	_, err := rand.Read(k[:])
	return k, err
}

// ID names the key in the manifest without revealing it.
func (k ContentKey) ID() KeyID {
	h := sha256.Sum256(append([]byte("swarmcast key id v1\x00"), k[:]...))
	var id KeyID
	copy(id[:], h[:16])
	return id
}

// SegmentIV is the per-segment CBC IV, written into the playlist as
// EXT-X-KEY IV=0x…. Deriving it with HMAC keeps IVs unique per (rendition,
// segment) and unpredictable to anyone without the key, without storing them.
func (k ContentKey) SegmentIV(rendition, segment int) [16]byte {
	mac := hmac.New(sha256.New, k[:])
	var b [12]byte
	copy(b[:4], "iv\x00\x00")
	binary.BigEndian.PutUint32(b[4:], uint32(rendition))
	binary.BigEndian.PutUint32(b[8:], uint32(segment))
	mac.Write(b[:])
	var iv [16]byte
	copy(iv[:], mac.Sum(nil))
	return iv
}

// EncryptSegment is HLS AES-128: AES-128-CBC with PKCS#7 padding.
func EncryptSegment(key ContentKey, iv [16]byte, plain []byte) []byte {
	block, _ := aes.NewCipher(key[:]) // 16-byte key: cannot fail
	pad := aes.BlockSize - len(plain)%aes.BlockSize
	out := make([]byte, len(plain)+pad)
	copy(out, plain)
	for i := len(plain); i < len(out); i++ {
		out[i] = byte(pad)
	}
	cipher.NewCBCEncrypter(block, iv[:]).CryptBlocks(out, out)
	return out
}

// parallelDecryptChunk is the least ciphertext worth a goroutine.
const parallelDecryptChunk = 128 << 10

// ErrBadKey means decryption produced invalid padding: wrong key or IV.
var ErrBadKey = errors.New("decrypt: invalid padding; the content key or IV is wrong, or the ciphertext is corrupted")

// DecryptSegment reverses EncryptSegment.
func DecryptSegment(key ContentKey, iv [16]byte, ct []byte) ([]byte, error) {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return nil, errors.New("decrypt: ciphertext length is not a positive multiple of 16")
	}
	block, _ := aes.NewCipher(key[:])
	out := make([]byte, len(ct))
	// CBC decryption has no chain: plaintext block i needs only ciphertext
	// blocks i-1 and i, so chunks decrypt independently, each with the
	// ciphertext block before it as IV.
	chunks := 1
	if len(ct) >= 2*parallelDecryptChunk {
		chunks = min(runtime.GOMAXPROCS(0), len(ct)/parallelDecryptChunk)
	}
	per := len(ct) / aes.BlockSize / chunks * aes.BlockSize
	parallelFor(chunks, func(c int) {
		lo, hi := c*per, (c+1)*per
		if c == chunks-1 {
			hi = len(ct)
		}
		civ := iv[:]
		if lo > 0 {
			civ = ct[lo-aes.BlockSize : lo]
		}
		cipher.NewCBCDecrypter(block, civ).CryptBlocks(out[lo:hi], ct[lo:hi])
	})
	pad := int(out[len(out)-1])
	if pad == 0 || pad > aes.BlockSize {
		return nil, ErrBadKey
	}
	for _, b := range out[len(out)-pad:] {
		if int(b) != pad {
			return nil, ErrBadKey
		}
	}
	return out[:len(out)-pad], nil
}
