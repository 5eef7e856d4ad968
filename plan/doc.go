// Package plan decides where content goes and which servers run: AVARDO for
// one auto-scaling data centre, RAVO for geo-distributed regions and COCOS for
// live overlay trees, each measured against its baselines and a lower or upper
// bound.
//
// The package is pure: it starts no goroutines, reads no clock, touches no
// network, and draws randomness only from the seeds it is given, so identical
// inputs always give identical plans. Linear programs go through the lp
// subpackage; its COIN-OR backend, which runs a subprocess, is the only
// exception and sits behind the lp.Solver interface.
package plan
