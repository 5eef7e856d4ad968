//go:build !unix

package content

import "time"

func processCPU() time.Duration { return 0 }
