// Package viewer is the player role: it fetches any k of n verified shards per segment from edges and origins, bans liars, measures QoE and serves the result as HLS on 127.0.0.1.
package viewer
