//go:build linux

package lab

func reloadScenario() Scenario  { return Scenario{Name: "reload", run: func(*session) error { return nil }} }
func restartScenario() Scenario { return Scenario{Name: "restart", run: func(*session) error { return nil }} }
func denyScenario() Scenario    { return Scenario{Name: "deny", run: func(*session) error { return nil }} }
func limitScenario() Scenario   { return Scenario{Name: "limit", run: func(*session) error { return nil }} }
