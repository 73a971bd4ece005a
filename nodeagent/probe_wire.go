package nodeagent

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Batched probe I/O (issue 15: probing 100 candidates every 100 ms must
// cost well under 1% of a core). The cost was the kernel and the
// scheduler per packet: one send per probe and, per reply, a reader
// goroutine woken to read it. Now:
//
//   - a round's probes leave each socket in batches (sendmmsg on Linux);
//   - the probing sockets have no reader: each round first reads the
//     replies queued since the last round, in batches (recvmmsg, without
//     waiting), before it folds them into the health. A reply still counts
//     exactly when it arrived before the round that settles its probe, as
//     when a reader marked it on arrival; its round trip is the kernel's
//     receive timestamp minus the send time. The socket's receive buffer
//     is sized to hold a round's replies (probeRcvBuf);
//   - a responder reads the probes queued on its socket in one batch and
//     answers them in one batch.
//
// The wire format is unchanged: old and new agents probe and answer each
// other.

// putProbe writes the probe of a round with its nonce into b (probeLen
// bytes).
func putProbe(b []byte, round uint32, nonce uint64) {
	copy(b, probeMagic)
	binary.BigEndian.PutUint32(b[4:], round)
	binary.BigEndian.PutUint64(b[8:], nonce)
}

// replyNonce is the nonce a reply echoes; false when b is no reply.
func replyNonce(b []byte) (uint64, bool) {
	if len(b) != probeLen || !bytes.Equal(b[:4], replyMagic) {
		return 0, false
	}
	return binary.BigEndian.Uint64(b[8:]), true
}

// answerProbe turns the probe in b into its reply, in place; false when b
// is no probe (a probe of either release: the reply echoes its last 12
// bytes, whatever they carry).
func answerProbe(b []byte) bool {
	if len(b) != probeLen || !bytes.Equal(b[:4], probeMagic) {
		return false
	}
	copy(b, replyMagic)
	return true
}

// probeReplyBudget is the receive buffer one queued reply may take: the
// kernel charges a datagram's whole buffer (its truesize), which a NIC
// driver may make a page for a 16-byte payload.
const probeReplyBudget = 4 << 10

// probeRcvBuf is the receive buffer a probing socket asks for when n
// probes go out of it per round and a probe may wait timeout for its reply
// while rounds go every interval: room for the replies of every round that
// may still be outstanding, plus one (a round delayed on a busy node), at
// least two rounds, never below 256 KiB and never above 64 MiB. Replies
// are read once a round, so a path that stalls and then drains must not
// overflow the buffer: dropped replies would settle as misses.
func probeRcvBuf(n int, timeout, interval time.Duration) int {
	rounds := 2
	if interval > 0 {
		rounds = max(rounds, int((timeout+interval-1)/interval)+1)
	}
	return min(64<<20, max(256<<10, rounds*n*probeReplyBudget))
}
