// Package capture reads and writes packet captures: classic pcap and pcapng, either of
// them optionally gzip-compressed.
//
// The Reader is written here rather than taken from gopacket/pcapgo because replay must
// sustain millions of packets per second on one core: Next hands out a slice of the
// Reader's own buffer (no copy, no allocation per packet), converts every timestamp
// resolution to Unix nanoseconds with precomputed factors, and reports damage as a
// FormatError carrying the exact byte offset of the broken record in the decompressed
// stream, which pcapgo does not track. Memory is bounded by the largest record, never
// by the file: packet records larger than MaxCaptureLen are rejected before anything
// is allocated for them, and blocks the Reader does not need are skipped by streaming.
//
// The writers are small enough that owning them costs little and keeps the per-packet
// path allocation-free as well: NgWriter writes pcapng with nanosecond timestamps and
// an optional comment per packet (how keepstate records why a packet was dropped),
// PcapWriter writes classic pcap for tools that want nothing newer.
package capture
