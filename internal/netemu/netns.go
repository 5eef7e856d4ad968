// Package netemu runs real swarmcast processes in Linux network namespaces
// joined by one bridge, with kernel-enforced uplink caps (tc tbf), so an
// emulation's traffic crosses real sockets and a real qdisc but never
// leaves the namespaces: nothing is added to the host's own namespace
// (the veth pairs are created directly inside the namespaces), and every
// namespace of a run is deleted on Close, which takes its veths and
// qdiscs with it. Latency and loss are not the kernel's (this kernel has
// no netem): the nodes add them on their listeners (--impair, package
// internal/impair).
//
// Addresses are 10.77.0.0/24, which exists only inside the namespaces.
// Needs root and iproute2's ip and tc.
package netemu

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Prefix starts the name of every namespace this package creates, so
// Leftovers can find them (and nothing else).
const Prefix = "swcemu-"

// Subnet is the private range the namespaces' addresses come from.
const Subnet = "10.77.0.0/24"

// Network is one run's namespaces: a hub holding the bridge and one
// namespace per node, each with one veth to the bridge.
type Network struct {
	run   string // distinguishes concurrent runs' names
	hub   string
	nodes []*Node
}

// Node is one namespace with one address.
type Node struct {
	Name string // namespace name
	IP   string // e.g. 10.77.0.11
	dev  string // the node's interface, inside its namespace
}

// ErrUnavailable says the machine cannot run an emulation (not root, or
// no ip/tc).
var ErrUnavailable = errors.New("network namespaces unavailable: an emulation needs root and iproute2 (ip, tc)")

// Available reports whether namespaces can be created here.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: not running as root", ErrUnavailable)
	}
	for _, tool := range []string{"ip", "tc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not on PATH (apt-get install iproute2)", ErrUnavailable, tool)
		}
	}
	return nil
}

// New creates the hub namespace with its bridge. run names this run
// (at most 4 characters of [a-z0-9], so interface names fit in 15 bytes).
func New(ctx context.Context, run string) (*Network, error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if len(run) == 0 || len(run) > 4 || strings.Trim(run, "abcdefghijklmnopqrstuvwxyz0123456789") != "" {
		return nil, fmt.Errorf("run name %q: want 1–4 of [a-z0-9]", run)
	}
	n := &Network{run: run, hub: Prefix + run + "-hub"}
	if err := ip(ctx, "netns", "add", n.hub); err != nil {
		return nil, err
	}
	for _, args := range [][]string{
		{"-n", n.hub, "link", "set", "lo", "up"},
		{"-n", n.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", n.hub, "link", "set", "br0", "up"},
	} {
		if err := ip(ctx, args...); err != nil {
			n.Close()
			return nil, err
		}
	}
	return n, nil
}

// AddNode creates namespace number i (1 ≤ i ≤ 250) with address 10.77.0.i
// and a veth to the bridge; uplinkBitsPerS > 0 caps its egress with tbf.
func (n *Network) AddNode(ctx context.Context, i int, uplinkBitsPerS int64) (*Node, error) {
	if i < 1 || i > 250 {
		return nil, fmt.Errorf("node %d: want 1..250", i)
	}
	node := &Node{Name: fmt.Sprintf("%s%s-%d", Prefix, n.run, i), IP: fmt.Sprintf("10.77.0.%d", i), dev: "eth0"}
	if err := ip(ctx, "netns", "add", node.Name); err != nil {
		return nil, err
	}
	n.nodes = append(n.nodes, node)
	hubSide := fmt.Sprintf("v%s-%d", n.run, i) // ≤ 1+4+1+3 = 9 bytes
	steps := [][]string{
		{"link", "add", hubSide, "netns", n.hub, "type", "veth", "peer", "name", node.dev, "netns", node.Name},
		{"-n", n.hub, "link", "set", hubSide, "master", "br0"},
		{"-n", n.hub, "link", "set", hubSide, "up"},
		{"-n", node.Name, "link", "set", "lo", "up"},
		{"-n", node.Name, "addr", "add", node.IP + "/24", "dev", node.dev},
		{"-n", node.Name, "link", "set", node.dev, "up"},
	}
	for _, args := range steps {
		if err := ip(ctx, args...); err != nil {
			return nil, err
		}
	}
	if uplinkBitsPerS > 0 {
		// burst: at least one MTU-sized packet and 10 ms at the rate;
		// latency bounds the queue (packets waiting longer are dropped, as
		// a home router's buffer would).
		burst := max(uplinkBitsPerS/8/100, 3000)
		if err := node.Exec(ctx, "tc", "qdisc", "add", "dev", node.dev, "root", "tbf",
			"rate", fmt.Sprintf("%dbit", uplinkBitsPerS), "burst", fmt.Sprint(burst), "latency", "200ms"); err != nil {
			return nil, err
		}
	}
	return node, nil
}

// Exec runs a short command in the node's namespace and waits for it.
func (node *Node) Exec(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", node.Name, name}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s in %s: %w: %s", name, node.Name, err, bytes.TrimSpace(out))
	}
	return nil
}

// Output runs a short command in the node's namespace and returns its
// standard output.
func (node *Node) Output(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", node.Name, name}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s in %s: %w: %s", name, node.Name, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// Command is a long-running process in the node's namespace; ip netns exec
// execs it, so the process's pid is the program's. It is killed if this
// process dies (Pdeathsig), so no node outlives its driver.
func (node *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", node.Name, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	return cmd
}

// Close deletes every namespace of the run (their veths and qdiscs go
// with them). Processes still running in them must be stopped first:
// their sockets would keep a deleted namespace's stack alive.
func (n *Network) Close() error {
	var errs []error
	for _, node := range n.nodes {
		errs = append(errs, ip(context.Background(), "netns", "del", node.Name))
	}
	errs = append(errs, ip(context.Background(), "netns", "del", n.hub))
	n.nodes = nil
	return errors.Join(errs...)
}

// Leftovers lists namespaces named with Prefix: after every run has
// closed, none.
func Leftovers(ctx context.Context) ([]string, error) {
	out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
	if err != nil {
		return nil, fmt.Errorf("ip netns list: %w", err)
	}
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], Prefix) {
			names = append(names, f[0])
		}
	}
	return names, nil
}

func ip(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
