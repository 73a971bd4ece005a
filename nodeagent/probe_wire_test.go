package nodeagent

import (
	"bytes"
	"testing"
	"time"
)

// TestProbeWire: probes and replies keep the format of every release (4
// bytes of magic, 4 of round, 8 of nonce; before the nonce the last 8
// carried the send time), so old and new agents probe and answer each
// other.
func TestProbeWire(t *testing.T) {
	probe := make([]byte, probeLen)
	putProbe(probe, 7, 0x0102030405060708)
	if want := []byte("KSP?\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"); !bytes.Equal(probe, want) {
		t.Fatalf("probe %q, want %q", probe, want)
	}
	for _, c := range []struct {
		name      string
		in        []byte
		answer    bool   // answerProbe answers it
		reply     []byte // the reply, when answered
		replyOf   bool   // replyNonce accepts the input as a reply
		nonceSeen uint64
	}{
		{"probe", probe, true, []byte("KSP!\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"), false, 0},
		{"old probe with a send time", []byte("KSP?\x00\x00\x00\x01\x18\x7a\x00\x00\x00\x00\x00\x09"), true, []byte("KSP!\x00\x00\x00\x01\x18\x7a\x00\x00\x00\x00\x00\x09"), false, 0},
		{"reply", []byte("KSP!\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"), false, nil, true, 0x0102030405060708},
		{"short", []byte("KSP?\x00\x00\x00\x07"), false, nil, false, 0},
		{"long", append([]byte("KSP!\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"), 0), false, nil, false, 0},
		{"other magic", []byte("XSP!\x00\x00\x00\x07\x01\x02\x03\x04\x05\x06\x07\x08"), false, nil, false, 0},
		{"empty", nil, false, nil, false, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			n, ok := replyNonce(c.in)
			if ok != c.replyOf || n != c.nonceSeen {
				t.Errorf("replyNonce = %#x, %v, want %#x, %v", n, ok, c.nonceSeen, c.replyOf)
			}
			b := bytes.Clone(c.in)
			if got := answerProbe(b); got != c.answer {
				t.Fatalf("answerProbe = %v, want %v", got, c.answer)
			}
			if c.answer && !bytes.Equal(b, c.reply) {
				t.Errorf("reply %q, want %q", b, c.reply)
			}
			if !c.answer && !bytes.Equal(b, c.in) {
				t.Errorf("input changed to %q though not answered", b)
			}
		})
	}
}

// TestProbeRcvBuf: a probing socket holds two rounds of replies at the
// budget per reply, never less than 256 KiB.
func TestProbeRcvBuf(t *testing.T) {
	const ms = time.Millisecond
	for _, c := range []struct {
		n                 int
		timeout, interval time.Duration
		want              int
	}{
		{0, 300 * ms, 100 * ms, 256 << 10},
		{1, 300 * ms, 100 * ms, 256 << 10},
		{16, 300 * ms, 100 * ms, 256 << 10},
		{100, 50 * ms, 100 * ms, 800 << 10},          // a timeout within the interval: two rounds
		{100, 100 * ms, 100 * ms, 800 << 10},         // a round outstanding, plus one
		{100, 300 * ms, 100 * ms, 1600 << 10},        // three rounds outstanding, plus one
		{1000, 10 * time.Second, 100 * ms, 64 << 20}, // 101 rounds of 1,000: capped
		{1000, 500 * ms, 100 * ms, 24000 << 10},
		{100, 300 * ms, 0, 800 << 10}, // no interval: two rounds
	} {
		if got := probeRcvBuf(c.n, c.timeout, c.interval); got != c.want {
			t.Errorf("probeRcvBuf(%d, %s, %s) = %d, want %d", c.n, c.timeout, c.interval, got, c.want)
		}
	}
}
