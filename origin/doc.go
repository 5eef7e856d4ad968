// Package origin serves every shard of every segment of a publisher's store, computing parity on demand, and publishes the catalogue to the coordinator.
package origin
