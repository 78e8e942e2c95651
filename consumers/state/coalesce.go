package state

import (
	"math"
	"strings"
)

// coalescer sums a Redis batch's increments of the same counter, so a
// batch of events about few aggregates (the common case: a partition holds
// a subset of the aggregates) sends one HINCRBY per hash field instead of
// one per event. The final state is the same as running every command in
// order: an increment is folded into an earlier one only when no command
// that may touch its key came between them.
type coalescer struct {
	// pending maps key -> field ("" for INCRBY) -> index in the batch of
	// the increment later ones fold into.
	pending map[string]map[string]int
}

// add appends cmd to cmds, or folds it into an earlier increment.
func (c *coalescer) add(cmds [][]any, cmd []any) [][]any {
	name, _ := cmd[0].(string)
	switch strings.ToLower(name) {
	case "hincrby":
		if len(cmd) == 4 {
			return c.fold(cmds, cmd, 3)
		}
	case "incrby":
		if len(cmd) == 3 {
			return c.fold(cmds, cmd, 2)
		}
	case "del", "unlink", "exists", "touch":
		for _, k := range cmd[1:] { // every argument is a key
			c.forget(k)
		}
		return append(cmds, cmd)
	case "set", "setnx", "setex", "psetex", "getset", "getdel", "append", "incr", "decr", "decrby",
		"hset", "hsetnx", "hmset", "hdel", "hincrbyfloat", "incrbyfloat",
		"expire", "pexpire", "expireat", "pexpireat", "persist",
		"sadd", "srem", "zadd", "zrem", "zincrby", "lpush", "rpush", "lpop", "rpop", "ltrim", "lrem", "lset",
		"pfadd", "xadd", "setrange", "setbit":
		if len(cmd) > 1 {
			c.forget(cmd[1]) // the key is the first argument
			return append(cmds, cmd)
		}
	}
	// A command whose keys we do not know: nothing folds across it.
	c.pending = nil
	return append(cmds, cmd)
}

// fold folds the increment cmd (key at 1, field at 2 for HINCRBY, the
// amount at index at) into the pending one of the same counter.
func (c *coalescer) fold(cmds [][]any, cmd []any, at int) [][]any {
	key, ok := cmd[1].(string)
	delta, isInt := cmd[at].(int64)
	if !ok || !isInt {
		c.pending = nil
		return append(cmds, cmd)
	}
	field := ""
	if at == 3 {
		if field, ok = cmd[2].(string); !ok {
			c.pending = nil
			return append(cmds, cmd)
		}
	}
	if i, ok := c.pending[key][field]; ok {
		prev := cmds[i][at].(int64)
		if (delta > 0 && prev <= math.MaxInt64-delta) || (delta <= 0 && prev >= math.MinInt64-delta) {
			cmds[i][at] = prev + delta
			return cmds
		}
	}
	if c.pending == nil {
		c.pending = map[string]map[string]int{}
	}
	if c.pending[key] == nil {
		c.pending[key] = map[string]int{}
	}
	c.pending[key][field] = len(cmds)
	return append(cmds, cmd)
}

func (c *coalescer) forget(key any) {
	if k, ok := key.(string); ok {
		delete(c.pending, k)
		return
	}
	c.pending = nil
}
