package packet

// Test-only exports for the external tests in package packet_test.

// CheckDecodeInvariants is checkDecodeInvariants for packet_test.
var CheckDecodeInvariants = checkDecodeInvariants
