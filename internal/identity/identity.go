// Package identity gives each node a persistent ed25519 key pair, created on first start.
package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/swarmcast/swarmcast/internal/secretfile"
	"github.com/swarmcast/swarmcast/wire"
)

// Identity is a node's signing key and the id derived from it.
type Identity struct {
	Key ed25519.PrivateKey
	ID  wire.NodeID
}

// New makes a fresh in-memory identity (tests, ephemeral viewers).
func New() Identity {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	return FromKey(priv)
}

// FromKey wraps an existing key.
func FromKey(priv ed25519.PrivateKey) Identity {
	return Identity{Key: priv, ID: wire.NodeID(hex.EncodeToString(priv.Public().(ed25519.PublicKey)))}
}

// LoadOrCreate reads the hex seed at path, or creates it (0600, written to a
// temp file and renamed, so a crash never leaves a half-written key). An
// existing key readable by others is made 0600 before it is used
// (secretfile.Read).
func LoadOrCreate(path string) (Identity, error) {
	b, err := secretfile.Read(path)
	if errors.Is(err, fs.ErrNotExist) {
		id := New()
		if err := secretfile.Write(path, []byte(hex.EncodeToString(id.Key.Seed())+"\n")); err != nil {
			return Identity{}, fmt.Errorf("create node identity %s: %w", path, err)
		}
		return id, nil
	}
	if err != nil {
		return Identity{}, err
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return Identity{}, fmt.Errorf("node identity %s is corrupted (want %d hex-encoded bytes); delete it to start as a new node", path, ed25519.SeedSize)
	}
	return FromKey(ed25519.NewKeyFromSeed(seed)), nil
}

// ParsePublicKey turns a NodeID back into a verification key.
func ParsePublicKey(id wire.NodeID) (ed25519.PublicKey, error) {
	b, err := hex.DecodeString(string(id))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("node id %q: want %d hex-encoded bytes", id, ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}
