package nodeagent

import (
	"bytes"
	"testing"
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
	for _, c := range []struct{ n, want int }{
		{0, 256 << 10},
		{1, 256 << 10},
		{32, 256 << 10},
		{33, 33 * 8 << 10},
		{100, 800 << 10},
		{1000, 8000 << 10},
	} {
		if got := probeRcvBuf(c.n); got != c.want {
			t.Errorf("probeRcvBuf(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}
