// Package coordinator is the Swarmcast control plane, and the owner of the
// accounting subsystem that pays for what it routes.
//
// # What each part owns
//
// The control plane (this package) holds soft state only, rebuilt from
// heartbeats after a restart:
//
//   - state.go: the sans-IO core. Registry and liveness, inventory and the
//     per-segment holder index, the catalogue, bans, audit-target choice.
//     Every method takes the time it acts at; none locks or does I/O.
//   - index.go: the holder index packed for 10^8 held shards: nodes and
//     catalogued segments by dense slots, 16 bytes per (node, segment).
//   - lookup.go: ranking a window of segments' holders (sans-IO, read-only,
//     so lookups share the read lock), and rendering the answer.
//   - demand.go, placement.go, shardmask.go: decayed per-segment demand and
//     the placer that turns it into fetch/drop directives within every
//     edge's disk and upload caps (sans-IO).
//   - originpool.go: the AVARDO origin pool (sans-IO core plus the lookup
//     hook that dispatches segments to origins).
//   - coordinator.go: Config, the Coordinator (locks around the cores),
//     New, Run and the chores it drives (Sweep, Place).
//   - api.go: the control-plane endpoints of wire/routes.go (register,
//     heartbeat, leave, publish, catalogue, manifest, key, lookup,
//     bad-shard, play report, stats).
//   - network.go: the control plane as the accounting subsystem sees it
//     (accounting.Network).
//
// The accounting subsystem (package coordinator/accounting) owns accounts,
// sessions, the ledger, entitlements, order limits, settlement, flows,
// audits, uptime and reputation. The control plane asks it, through the
// narrow accountingService interface, only for what a lookup, a key, a
// publish or a sweep needs; it asks the control plane, through
// accounting.Network, for manifests, audit targets, alive origins, edge
// liveness and bans. Neither reaches into the other's state.
//
// # Storage
//
// There is always a durable store (Config.Store; *coordinatordb.DB over
// SQLite or PostgreSQL): the control plane reads its catalogue and bans at
// start and writes them through on change; the accounting subsystem keeps
// everything else there. Each side declares the interface it consumes
// (Store here, accounting.DB there), so coordinatordb declares none.
package coordinator
