package tree

import (
	"slices"
	"sync"

	"k8s.io/client-go/util/workqueue"
)

// lane is where a key waits in a member's work queue.
type lane int

const (
	// laneDown holds keys queued by a change in the host (a pod bound to a
	// virtual node, deleted or changed there; a dependency's source) and
	// keys queued again after an error: the work that carries pods down.
	laneDown lane = iota
	// laneUp holds keys queued by a change of a member pod the tree
	// created: mostly status to carry up to the host pod.
	laneUp
)

// laneQueue is the storage under a member's work queue
// (workqueue.Queue): two FIFO lanes, served in turn while both hold keys,
// so that a burst of new host pods does not hold up the status of running
// ones, nor a burst of status changes the creates. The work queue above it
// keeps its guarantees whatever the lane: a key waits at most once, and
// is never handed to two workers at a time; a key changed while a worker
// has it is queued again when the worker is done, so a delete that follows
// a create of the same pod is always looked at after it.
//
// mark says which lane a key's next Add goes to (laneDown when unmarked);
// the queue calls Push, Touch, Len and Pop under its own lock, mark is
// called before Add without it.
type laneQueue struct {
	mu    sync.Mutex
	hint  map[string]lane // lane of a key's coming Push, until it is pushed
	lanes [2][]string
	next  lane // the lane served first by the next Pop
}

var _ workqueue.Queue[string] = (*laneQueue)(nil)

func newLaneQueue() *laneQueue { return &laneQueue{hint: map[string]lane{}} }

// mark sends key's coming Push to lane l. When both lanes mark a key
// before it is pushed, laneDown wins: the host's change is the one a
// worker must not wait for behind status work.
func (q *laneQueue) mark(key string, l lane) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if have, ok := q.hint[key]; !ok || have != laneDown {
		q.hint[key] = l
	}
}

// Push appends key to the lane it was marked for.
func (q *laneQueue) Push(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.hint[key]
	delete(q.hint, key)
	q.lanes[l] = append(q.lanes[l], key)
}

// Touch is an Add of a key already waiting: it keeps its place and lane,
// unless it waits in the up lane and the Add was a host change (marked
// laneDown): then it moves to the end of the down lane, so a host change
// never waits behind status work.
func (q *laneQueue) Touch(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if l, ok := q.hint[key]; ok && l == laneDown {
		if i := slices.Index(q.lanes[laneUp], key); i >= 0 {
			q.lanes[laneUp] = slices.Delete(q.lanes[laneUp], i, i+1)
			q.lanes[laneDown] = append(q.lanes[laneDown], key)
		}
	}
	delete(q.hint, key)
}

func (q *laneQueue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.lanes[laneDown]) + len(q.lanes[laneUp])
}

// Pop takes the oldest key of the lane whose turn it is, or of the other
// lane when that one is empty; the turn passes to the other lane.
func (q *laneQueue) Pop() string {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := pickLane(q.next, len(q.lanes[laneDown]), len(q.lanes[laneUp]))
	key := q.lanes[l][0]
	q.lanes[l][0] = ""
	q.lanes[l] = q.lanes[l][1:]
	q.next = 1 - l
	return key
}

// pickLane is the lane a Pop serves: turn's when it holds keys, the other
// one otherwise. The work queue pops only when some lane holds a key.
func pickLane(turn lane, down, up int) lane {
	n := [2]int{down, up}
	if n[turn] > 0 {
		return turn
	}
	return 1 - turn
}

// newPodQueue is a member's rate-limited work queue over lanes.
func newPodQueue(name string, lanes *laneQueue) workqueue.TypedRateLimitingInterface[string] {
	q := workqueue.NewTypedWithConfig(workqueue.TypedQueueConfig[string]{Name: name, Queue: lanes})
	return workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[string](),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: name,
			DelayingQueue: workqueue.NewTypedDelayingQueueWithConfig(workqueue.TypedDelayingQueueConfig[string]{Name: name, Queue: q})})
}

// addDown queues a host pod's key for a change in the host: in the down
// lane, even when a member pod's status change marked it up meanwhile or
// it waits in the up lane already.
func (m *memberSync) addDown(key string) {
	m.lanes.mark(key, laneDown)
	m.queue.Add(key)
}

// addUp queues a key for a change of the member pod the tree created: in
// the up lane, unless a host change marked it down first.
func (m *memberSync) addUp(key string) {
	m.lanes.mark(key, laneUp)
	m.queue.Add(key)
}
