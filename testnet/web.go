package testnet

import (
	"fmt"

	"github.com/swarmcast/swarmcast/wire"
)

// EdgeAccountPassword is the password of every edge's account ("edge-0",
// "edge-1", ...); it passes the policy: long, not common, not the
// username. Browser tests log in with it.
const EdgeAccountPassword = "testnet-account-secret"

// AdminCredentials are the testnet's admin account, for logging in to the
// web app's admin pages.
func (n *Network) AdminCredentials() wire.Credentials {
	return wire.Credentials{Username: adminUser, Password: adminPassword}
}

// EdgeCredentials are the login of edge e's account.
func (n *Network) EdgeCredentials(e *EdgeNode) wire.Credentials {
	return wire.Credentials{Username: edgeAccountName(e.Index), Password: EdgeAccountPassword}
}

// edgeAccountName is the account that runs edge i.
func edgeAccountName(i int) string { return fmt.Sprintf("edge-%d", i) }
