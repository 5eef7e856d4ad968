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

	"github.com/swarmcast/swarmcast/internal/aescbc"
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

// DecryptSegment reverses EncryptSegment into a new buffer; ct is unchanged.
func DecryptSegment(key ContentKey, iv [16]byte, ct []byte) ([]byte, error) {
	if err := checkCiphertextLength(ct); err != nil {
		return nil, err
	}
	return decryptInto(key, iv, make([]byte, len(ct)), ct)
}

// DecryptSegmentInPlace is DecryptSegment overwriting ct with the plaintext:
// the returned slice is ct without its padding. On ErrBadKey ct holds the
// (wrong) decryption, so a caller that must keep the ciphertext copies it
// first or uses DecryptSegment.
func DecryptSegmentInPlace(key ContentKey, iv [16]byte, ct []byte) ([]byte, error) {
	if err := checkCiphertextLength(ct); err != nil {
		return nil, err
	}
	return decryptInto(key, iv, ct, ct)
}

// CheckSegmentKey reports ErrBadKey when key and iv do not decrypt ct to
// valid PKCS#7 padding, the same verdict DecryptSegment gives, by
// decrypting only the last block (CBC needs just it and the one before).
func CheckSegmentKey(key ContentKey, iv [16]byte, ct []byte) error {
	if err := checkCiphertextLength(ct); err != nil {
		return err
	}
	chain := iv
	if len(ct) > aes.BlockSize {
		copy(chain[:], ct[len(ct)-2*aes.BlockSize:])
	}
	var last [aes.BlockSize]byte
	_, err := decryptInto(key, chain, last[:], ct[len(ct)-aes.BlockSize:])
	return err
}

func checkCiphertextLength(ct []byte) error {
	if len(ct) == 0 || len(ct)%aes.BlockSize != 0 {
		return errors.New("decrypt: ciphertext length is not a positive multiple of 16")
	}
	return nil
}

// decryptInto decrypts ct into out (len(out) == len(ct); out == ct is in
// place) and strips the padding.
func decryptInto(key ContentKey, iv [16]byte, out, ct []byte) ([]byte, error) {
	dec, _ := aescbc.NewDecrypter(key[:]) // 16-byte key: cannot fail
	// CBC decryption has no chain: plaintext block i needs only ciphertext
	// blocks i-1 and i, so chunks decrypt independently, each with the
	// ciphertext block before it as IV. In place, a chunk's IV is the last
	// ciphertext block of the chunk before, which that chunk overwrites:
	// the IVs are taken before any chunk starts.
	chunks := 1
	if len(ct) >= 2*parallelDecryptChunk {
		chunks = min(runtime.GOMAXPROCS(0), len(ct)/parallelDecryptChunk)
	}
	per := len(ct) / aes.BlockSize / chunks * aes.BlockSize
	ivs := make([][aes.BlockSize]byte, chunks)
	ivs[0] = iv
	for c := 1; c < chunks; c++ {
		copy(ivs[c][:], ct[c*per-aes.BlockSize:c*per])
	}
	parallelFor(chunks, func(c int) {
		lo, hi := c*per, (c+1)*per
		if c == chunks-1 {
			hi = len(ct)
		}
		dec.Decrypt(out[lo:hi], ct[lo:hi], &ivs[c])
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
