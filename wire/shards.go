package wire

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/swarmcast/swarmcast/content"
)

// Calls to shard servers (edges and origins): the shard GET every role
// makes (viewer plays, edge prefetch, coordinator audits), the origin's
// manifest GET and the viewer's final order.

// ErrOversize marks a shard response longer than a shard can be: the
// source is lying, not failing.
var ErrOversize = errors.New("response over the size limit")

// ShardRequest is one GET of a shard from a shard server.
type ShardRequest struct {
	Base string           // the server's base URL, e.g. "http://127.0.0.1:7001"
	Ref  content.ShardRef // the shard asked for
	// MaxBytes bounds the body read (bytes): a longer body is ErrOversize,
	// so a lying source cannot make the caller buffer unbounded data. The
	// caller derives it from the verified manifest (header, proof and
	// shard size).
	MaxBytes int64
	// Limit and Order are the values of HeaderOrderLimit and HeaderOrder
	// (EncodeHeader of the coordinator's OrderLimit for this edge and of
	// the viewer's latest signed Order under it). Order is only sent with a
	// Limit; both empty is an unpaid request (origins, audits, prefetch).
	Limit, Order string
}

// ShardResponse is a shard server's answer. Body is unverified: the caller
// decodes it (content.DecodeShardMessage) and verifies it against the
// manifest before any use.
type ShardResponse struct {
	Body []byte
	// Node is the responder's HeaderNode, "" if it sent none: whom to
	// blame for a bad shard.
	Node NodeID
	// Receipt is the responder's HeaderReceipt value, "" if none (origins
	// sign none); CheckShardReceipt decodes and verifies it.
	Receipt string
}

// GetShard GETs one shard. A non-200 answer is an *APIError. A body over
// req.MaxBytes is an error wrapping ErrOversize, and then the response's
// Body holds the first MaxBytes+1 bytes received: evidence against the
// source.
func GetShard(ctx context.Context, hc *http.Client, req ShardRequest) (ShardResponse, error) {
	header := http.Header{}
	if req.Limit != "" {
		header.Set(HeaderOrderLimit, req.Limit)
		if req.Order != "" {
			header.Set(HeaderOrder, req.Order)
		}
	}
	return getShard(ctx, hc, ShardURL(req.Base, req.Ref), header, req.MaxBytes)
}

func getShard(ctx context.Context, hc *http.Client, url string, header http.Header, maxBytes int64) (ShardResponse, error) {
	var out ShardResponse
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	out.Node = NodeID(resp.Header.Get(HeaderNode))
	if resp.StatusCode != http.StatusOK {
		return out, readError(resp)
	}
	out.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		out.Body = nil
		return out, err
	}
	if int64(len(out.Body)) > maxBytes {
		return out, fmt.Errorf("%s: %w (limit %d bytes)", url, ErrOversize, maxBytes)
	}
	out.Receipt = resp.Header.Get(HeaderReceipt)
	return out, nil
}

// EncodeReceiptHeader is the HeaderReceipt value of a signed receipt: its
// signature alone, base64url (86 characters). Every other field is known to
// the receiver (the edge it asked, the shard it asked for and the SHA-256
// of the body it got), so sending them would only repeat them (and cost
// ~500 header bytes on every ~12 KB shard). The signed bytes are the same
// (ServedShardReceipt.SigningBytes): a receipt rebuilt by CheckShardReceipt
// is a full ServedShardReceipt, transferable as evidence.
func EncodeReceiptHeader(r *ServedShardReceipt) string {
	return base64.RawURLEncoding.EncodeToString(r.Signature)
}

// receiptHeaderLen is the length of an EncodeReceiptHeader value.
var receiptHeaderLen = base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize)

// CheckShardReceipt decodes a HeaderReceipt value and verifies it is the
// receipt for the shard asked for: signed by edge, naming ref, over exactly
// body (the response body: the encoded shard message). It returns the
// whole receipt, rebuilt from what the receiver knows plus the signature.
func CheckShardReceipt(header string, edge NodeID, ref content.ShardRef, body []byte) (*ServedShardReceipt, error) {
	if header == "" {
		return nil, errors.New("no receipt")
	}
	if len(header) != receiptHeaderLen {
		return nil, fmt.Errorf("receipt header of %d characters, want %d (base64url of an ed25519 signature)", len(header), receiptHeaderLen)
	}
	sig, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		return nil, fmt.Errorf("receipt header is not base64url: %v", err)
	}
	r := ServedShardReceipt{
		Edge: edge, Video: ref.Video, Rendition: ref.Rendition, Segment: ref.Segment, Shard: ref.Shard,
		ShardSHA256: sha256.Sum256(body), Signature: sig,
	}
	if err := VerifyShardReceipt(&r, body); err != nil {
		return nil, err
	}
	return &r, nil
}

// SendFinalOrder POSTs a viewer's final order for one serial to the edge at
// base (PathOrders), so the last shard of a play is paid.
func SendFinalOrder(ctx context.Context, hc *http.Client, base string, pair SettlementPair) error {
	body, err := json.Marshal(pair)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+PathOrders, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return readError(resp)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	return nil
}

// FetchOriginManifest GETs a manifest from an origin's shard server. The
// caller decodes and verifies it and checks its id.
func FetchOriginManifest(ctx context.Context, hc *http.Client, base string, video content.VideoID) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, OriginManifestURL(base, video), nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, readError(resp)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 64<<20))
}
