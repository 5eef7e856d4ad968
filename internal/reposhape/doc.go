// Package reposhape holds no code: its tests fail the build when the
// repository drifts from the shape docs/ARCHITECTURE.md describes (roles that
// import each other, sans-IO cores that read the clock or touch the network,
// a planner that grows dependencies).
package reposhape
