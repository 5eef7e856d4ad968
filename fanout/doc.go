// Package fanout pushes live segments down a channel's overlay trees
// (docs/LIVE.md): the push body (Push, DecodePush), a Sender with one
// bounded queue per child (the origin as every tree's root, relays as
// inner nodes), a Receiver that accepts a push only from the assigned
// parent and verifies the entry and every shard before keeping it, and
// the Window of recent verified shards relays and edges serve. It imports
// no role.
package fanout
