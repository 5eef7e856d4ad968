// Package content turns a video into signed, encrypted, erasure-coded, hash-verified pieces and back.
//
// The pipeline is: ffmpeg (or an existing HLS directory) → MPEG-TS segments per
// rendition → AES-128-CBC per segment (standard HLS encryption) → systematic
// Reed-Solomon shards (k data, up to n_max total) → SHA-256 leaf per shard →
// RFC 6962 Merkle root per segment and per rendition → a signed manifest whose
// SHA-256 is the video id. Nothing a peer sends is used before VerifyShard or
// Rebuild has checked it against the manifest.
package content
