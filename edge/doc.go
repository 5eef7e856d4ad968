// Package edge is the user-run cache: it stores verified shards on disk within a disk cap, serves them within an upload cap, and prefetches what the coordinator assigns.
package edge
