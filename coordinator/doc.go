// Package coordinator is the Swarmcast control plane: node registry and liveness, inventory, catalogue, source lookup and demand-driven shard placement.
package coordinator
