// Package wire is where Swarmcast's roles meet: the HTTP routes, JSON bodies and clients that coordinator, origin, edge and viewer use to talk.
//
// Roles never import each other. A role's server implements the routes
// below; a role that calls another uses the clients here. JSON bodies are
// limited in size and unknown fields are rejected, so a malformed request
// is a 4xx with a message, never a panic. Shards travel as
// content.ShardMessage bytes (binary, with their Merkle proof).
package wire
