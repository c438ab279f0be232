package main

import (
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// TaskJanitor keeps memory flat over an endless demo. vcsim 0.24.2 never removes a Task from
// its registry (≈58 KB RSS per demo cycle, linear: reference §4); a real vCenter forgets
// finished tasks too. The janitor removes a Task once it has finished (success or error), is
// older than maxAge and is no longer among TaskManager.recentTask (capped at 200, so that
// list never points at a removed task).
type TaskJanitor struct {
	maxAge time.Duration
	mu     sync.Mutex
	seen   map[types.ManagedObjectReference]time.Time // task -> when it was created
	stop   chan struct{}
	done   chan struct{}
}

var janitorRef = types.ManagedObjectReference{Type: "VancouverTaskJanitor", Value: "task-janitor"}

// NewTaskJanitor registers the janitor as a registry handler and sweeps every maxAge/2.
// maxAge <= 0 disables it (every Task is kept, as stock vcsim does).
func NewTaskJanitor(maxAge time.Duration) *TaskJanitor {
	j := &TaskJanitor{maxAge: maxAge, seen: map[types.ManagedObjectReference]time.Time{},
		stop: make(chan struct{}), done: make(chan struct{})}
	if maxAge <= 0 {
		close(j.done)
		return j
	}
	simulator.Map.AddHandler(j)
	go j.loop()
	return j
}

func (j *TaskJanitor) Reference() types.ManagedObjectReference { return janitorRef }

// PutObject is called by the registry for every new object; only Tasks are tracked.
func (j *TaskJanitor) PutObject(obj mo.Reference) {
	ref := obj.Reference()
	if ref.Type != "Task" {
		return
	}
	j.mu.Lock()
	j.seen[ref] = time.Now()
	j.mu.Unlock()
}

func (j *TaskJanitor) UpdateObject(mo.Reference, []types.PropertyChange) {}

func (j *TaskJanitor) RemoveObject(ref types.ManagedObjectReference) {
	if ref.Type != "Task" {
		return
	}
	j.mu.Lock()
	delete(j.seen, ref)
	j.mu.Unlock()
}

func (j *TaskJanitor) loop() {
	defer close(j.done)
	tick := time.NewTicker(j.maxAge / 2)
	defer tick.Stop()
	for {
		select {
		case <-j.stop:
			return
		case <-tick.C:
			j.Sweep()
		}
	}
}

// Sweep removes every finished task older than maxAge that TaskManager no longer lists.
// Returns how many it removed.
func (j *TaskJanitor) Sweep() int {
	recent := map[types.ManagedObjectReference]bool{}
	if tm, ok := simulator.Map.Get(taskManagerRef()).(*simulator.TaskManager); ok {
		simulator.Map.WithLock(tm, func() {
			for _, r := range tm.RecentTask {
				recent[r] = true
			}
		})
	}
	cutoff := time.Now().Add(-j.maxAge)
	var old []types.ManagedObjectReference
	j.mu.Lock()
	for ref, created := range j.seen {
		if created.Before(cutoff) && !recent[ref] {
			old = append(old, ref)
		}
	}
	j.mu.Unlock()
	removed := 0
	for _, ref := range old {
		task, ok := simulator.Map.Get(ref).(*simulator.Task)
		if !ok {
			j.RemoveObject(ref)
			continue
		}
		var finished bool
		simulator.Map.WithLock(task, func() {
			s := task.Info.State
			finished = s == types.TaskInfoStateSuccess || s == types.TaskInfoStateError
		})
		if finished { // a task left "running" by a panic stays visible, as a clue
			simulator.Map.Remove(ref)
			removed++
		}
	}
	return removed
}

// Stop ends the sweeping loop.
func (j *TaskJanitor) Stop() {
	select {
	case <-j.stop:
	default:
		close(j.stop)
	}
	<-j.done
}

func taskManagerRef() types.ManagedObjectReference {
	return serviceContent().TaskManager.Reference()
}
