// Package accounting is the coordinator's accounting subsystem: accounts
// and sessions, the points ledger and entitlements, coordinator-signed
// order limits, settlement of proofs of delivery, flows, proof-of-storage
// audits, uptime and reputation.
//
// Shaped like a storj satellite service: Service holds the logic, its HTTP
// endpoints (Routes: endpoint.go, settle.go) are thin, its chores (the
// audit chore in audit.go, the uptime recorder in uptime.go) are driven by
// Run and Swept, and it declares the two interfaces it consumes: DB (the
// durable store; *coordinatordb.DB implements it) and Network (what it
// asks of the control plane: manifests, audit targets, alive origins,
// edge liveness and bans; the coordinator implements it).
//
// The control plane calls it for exactly what a lookup, a key request, a
// publish or a sweep needs: OrderLimits, AuthorizeKey, VideoPublished,
// ProvenBadShard, Disqualified and Swept. Nothing here holds soft state of
// the network, so the package never takes the coordinator's locks.
package accounting
