package content

import (
	"crypto/sha256"
	"errors"
	"math/bits"
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// RFC 6962 domain separation: leaves and interior nodes hash with different
// prefixes so a leaf can never be passed off as a node (second-preimage).
const (
	leafPrefix = 0x00
	nodePrefix = 0x01
)

// LeafHash is the Merkle leaf hash of a shard: SHA-256(0x00 || data).
func LeafHash(data []byte) Hash {
	h := sha256.New()
	h.Write([]byte{leafPrefix})
	h.Write(data)
	var out Hash
	h.Sum(out[:0])
	return out
}

func nodeHash(left, right Hash) Hash {
	var buf [65]byte
	buf[0] = nodePrefix
	copy(buf[1:33], left[:])
	copy(buf[33:], right[:])
	return sha256.Sum256(buf[:])
}

// splitPoint is the largest power of two strictly less than n (n ≥ 2).
func splitPoint(n int) int {
	return 1 << (bits.Len(uint(n-1)) - 1)
}

// MerkleRoot is the RFC 6962 Merkle tree hash over already-hashed leaves.
// The root of zero leaves is SHA-256 of the empty string.
func MerkleRoot(leaves []Hash) Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return leaves[0]
	}
	k := splitPoint(len(leaves))
	return nodeHash(MerkleRoot(leaves[:k]), MerkleRoot(leaves[k:]))
}

// InclusionProof is the RFC 6962 audit path for leaf index among leaves,
// ordered from the leaf upward.
func InclusionProof(leaves []Hash, index int) []Hash {
	if len(leaves) <= 1 || index < 0 || index >= len(leaves) {
		return nil
	}
	k := splitPoint(len(leaves))
	if index < k {
		return append(InclusionProof(leaves[:k], index), MerkleRoot(leaves[k:]))
	}
	return append(InclusionProof(leaves[k:], index-k), MerkleRoot(leaves[:k]))
}

// errProofMismatch is returned when an inclusion proof does not lead to the root.
var errProofMismatch = errors.New("inclusion proof does not match the Merkle root")

// VerifyInclusion checks that leaf sits at index in a tree of size leaves with
// the given root (RFC 9162 §2.1.3.2).
func VerifyInclusion(root Hash, size, index int, leaf Hash, proof []Hash) error {
	if index < 0 || index >= size {
		return errors.New("leaf index outside the tree")
	}
	fn, sn := uint64(index), uint64(size-1)
	r := leaf
	for _, p := range proof {
		if sn == 0 {
			return errors.New("inclusion proof is longer than the tree is deep")
		}
		if fn&1 == 1 || fn == sn {
			r = nodeHash(p, r)
			for fn&1 == 0 && fn != 0 {
				fn >>= 1
				sn >>= 1
			}
		} else {
			r = nodeHash(r, p)
		}
		fn >>= 1
		sn >>= 1
	}
	if sn != 0 {
		return errors.New("inclusion proof is shorter than the tree is deep")
	}
	if r != root {
		return errProofMismatch
	}
	return nil
}
