// Package wire is where Swarmcast's roles meet: the HTTP routes, JSON bodies and clients that coordinator, origin, edge and viewer use to talk.
//
// Roles never import each other. A role's server implements the routes
// below; a role that calls another uses the clients here: CoordinatorClient
// for the coordinator's JSON API, NodeSession for a node's registration and
// heartbeats, GetShard and SendFinalOrder for shard servers. Every URL is
// derived from the route constant that also routes it on the server
// (ShardURL, SegmentURL, OriginManifestURL), and shard-server routes are
// addressed by content.ShardRef and content.SegmentRef. JSON bodies are
// limited in size and unknown fields are rejected, so a malformed request
// is a 4xx with a message, never a panic. Shards travel as
// content.ShardMessage bytes (binary, with their Merkle proof).
package wire
