package insight

type pressure struct{ base }

func newPressure() *pressure { return &pressure{} }
func (*pressure) kind() Kind { return TablePressure }

type limits struct{ base }

func newLimits() *limits   { return &limits{} }
func (*limits) kind() Kind { return ConnectionLimitHit }

type synFlood struct{ base }

func newSYNFlood() *synFlood { return &synFlood{} }
func (*synFlood) kind() Kind { return SYNFlood }

type desync struct{ base }

func newDesync() *desync   { return &desync{} }
func (*desync) kind() Kind { return WindowDesync }

type shadowed struct{ base }

func newShadowed() *shadowed { return &shadowed{} }
func (*shadowed) kind() Kind { return RuleShadowed }
