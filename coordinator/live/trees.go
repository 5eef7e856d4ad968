package live

// treeState is placeholder soft state for the fan-out trees.
type treeState struct {
	relays   map[string]struct{}
	watchers map[string]int
}

func newTreeState() *treeState { return &treeState{} }

// treesChanged marks the trees for a rebuild (s.mu held).
func (s *Service) treesChanged() {}

func (s *Service) watchers(any) int  { return 0 }
func (s *Service) relayCount() int   { return 0 }
func (s *Service) watcherCount() int { return 0 }
