package tree

import (
	"fmt"
	"sync"
	"testing"
)

func TestPickLane(t *testing.T) {
	for _, c := range []struct {
		turn     lane
		down, up int
		want     lane
	}{
		{laneDown, 1, 1, laneDown},
		{laneUp, 1, 1, laneUp},
		{laneDown, 0, 3, laneUp},
		{laneUp, 3, 0, laneDown},
		{laneUp, 5, 1, laneUp},
	} {
		if got := pickLane(c.turn, c.down, c.up); got != c.want {
			t.Errorf("pickLane(%v, %d, %d) = %v, want %v", c.turn, c.down, c.up, got, c.want)
		}
	}
}

// add queues key in lane l as the event handlers do.
func add(q *laneQueue, wq interface{ Add(string) }, key string, l lane) {
	q.mark(key, l)
	wq.Add(key)
}

// TestStatusNotBehindCreates: a member pod's status change queued behind a
// burst of host pods is handed out second, not after the whole burst; the
// burst keeps its order. With one FIFO it came out last.
func TestStatusNotBehindCreates(t *testing.T) {
	lanes := newLaneQueue()
	q := newPodQueue("", lanes)
	defer q.ShutDown()
	for i := range 100 {
		add(lanes, q, fmt.Sprintf("ns/new-%d", i), laneDown)
	}
	add(lanes, q, "ns/running", laneUp)
	var got []string
	for range 4 {
		k, _ := q.Get()
		got = append(got, k)
		q.Done(k)
	}
	want := []string{"ns/new-0", "ns/running", "ns/new-1", "ns/new-2"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handed out %v, want %v", got, want)
	}
}

// TestLaneQueueOneKeyOnce: a key queued in both lanes waits once; a key
// changed while a worker has it (a delete after its create, a recreated
// pod's status) comes back once after Done, never to a second worker
// meanwhile; no lane mark is left behind.
func TestLaneQueueOneKeyOnce(t *testing.T) {
	lanes := newLaneQueue()
	q := newPodQueue("", lanes)
	defer q.ShutDown()
	add(lanes, q, "ns/p", laneDown)
	add(lanes, q, "ns/p", laneUp)
	if n := q.Len(); n != 1 {
		t.Fatalf("a key queued by both lanes waits %d times, want once", n)
	}
	k, _ := q.Get()
	add(lanes, q, "ns/p", laneUp)   // the copy changed while the worker has it
	add(lanes, q, "ns/p", laneDown) // and the host pod was deleted
	add(lanes, q, "ns/other", laneUp)
	if k2, _ := q.Get(); k2 != "ns/other" {
		t.Fatalf("second Get = %q while ns/p is being worked on, want ns/other", k2)
	} else {
		q.Done(k2)
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("ns/p queued %d times while a worker has it, want 0 until Done", n)
	}
	q.Done(k)
	if n := q.Len(); n != 1 {
		t.Fatalf("after Done ns/p waits %d times, want once", n)
	}
	if k, _ = q.Get(); k != "ns/p" {
		t.Fatalf("Get = %q, want ns/p again", k)
	}
	q.Done(k)
	lanes.mu.Lock()
	defer lanes.mu.Unlock()
	if len(lanes.hint) != 0 {
		t.Fatalf("lane marks left behind: %v", lanes.hint)
	}
}

// TestLaneQueueNeverTwoWorkers: many workers and many adds in both lanes:
// no key is ever held by two workers at a time, and every key added is
// handed out after its last add.
func TestLaneQueueNeverTwoWorkers(t *testing.T) {
	lanes := newLaneQueue()
	q := newPodQueue("", lanes)
	var mu sync.Mutex
	held := map[string]bool{}
	seen := map[string]int{} // Gets per key after the adds finished
	var adding sync.WaitGroup
	var workers sync.WaitGroup
	var fault error
	for range 8 {
		workers.Go(func() {
			for {
				k, quit := q.Get()
				if quit {
					return
				}
				mu.Lock()
				if held[k] {
					fault = fmt.Errorf("%s held by two workers", k)
				}
				held[k] = true
				seen[k]++
				mu.Unlock()
				mu.Lock()
				held[k] = false
				mu.Unlock()
				q.Done(k)
			}
		})
	}
	for w := range 4 {
		adding.Go(func() {
			for i := range 2000 {
				add(lanes, q, fmt.Sprintf("ns/p-%d", i%50), lane(w%2))
			}
		})
	}
	adding.Wait()
	q.ShutDownWithDrain()
	workers.Wait()
	if fault != nil {
		t.Fatal(fault)
	}
	if len(seen) != 50 {
		t.Fatalf("%d keys handed out, want 50", len(seen))
	}
	lanes.mu.Lock()
	defer lanes.mu.Unlock()
	if len(lanes.hint) != 0 || len(lanes.lanes[laneDown])+len(lanes.lanes[laneUp]) != 0 {
		t.Fatalf("left behind: marks %v, lanes %v", lanes.hint, lanes.lanes)
	}
}

// TestHostChangeNotBehindStatus: a host change of a key that already waits
// in the up lane (its member pod's status changed first) moves it to the
// down lane, and a host change of a key a worker holds, marked up by a
// status change meanwhile, comes back in the down lane: a host create or
// delete never waits behind a burst of status work.
func TestHostChangeNotBehindStatus(t *testing.T) {
	lanes := newLaneQueue()
	q := newPodQueue("", lanes)
	defer q.ShutDown()
	m := &memberSync{lanes: lanes, queue: q}
	m.addUp("ns/held")
	held, _ := q.Get()
	for i := range 50 {
		m.addUp(fmt.Sprintf("ns/status-%d", i))
	}
	m.addUp("ns/deleted")
	m.addDown("ns/deleted") // the host pod deleted: its key waits in the up lane
	m.addUp("ns/held")      // status while a worker holds it…
	m.addDown("ns/held")    // …then the host pod changes
	q.Done(held)
	var got []string
	for range 4 {
		k, _ := q.Get()
		got = append(got, k)
		q.Done(k)
	}
	want := []string{"ns/deleted", "ns/status-0", "ns/held", "ns/status-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("handed out %v, want %v", got, want)
	}
}
