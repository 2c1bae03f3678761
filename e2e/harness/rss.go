package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mem is the resident memory of a process or a process tree, in bytes.
// RSS counts every resident page a process maps, so pages shared between
// processes (libraries, forked copy-on-write pages) are counted once per
// process; PSS divides each shared page among the processes sharing it,
// so that a tree's PSS adds up to what it really holds. PSS is -1 when
// /proc/PID/smaps_rollup cannot be read.
type Mem struct {
	RSS, PSS int64
	Procs    int
}

// MemOf reads one process's RSS and PSS from /proc/PID/smaps_rollup
// (RSS from /proc/PID/status when that cannot be read).
func MemOf(pid int) (Mem, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil || len(data) == 0 {
		rss, err := rssOf(pid)
		return Mem{RSS: rss, PSS: -1, Procs: 1}, err
	}
	m := Mem{RSS: -1, PSS: -1, Procs: 1}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || (f[0] != "Rss:" && f[0] != "Pss:") {
			continue
		}
		kb, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			return m, fmt.Errorf("smaps_rollup of %d: %q: %v", pid, sc.Text(), err)
		}
		if f[0] == "Rss:" {
			m.RSS = kb << 10
		} else {
			m.PSS = kb << 10
		}
	}
	if m.RSS < 0 {
		return m, fmt.Errorf("no Rss in smaps_rollup of %d", pid)
	}
	return m, nil
}

// Descendants lists every process under pid (children, their children,
// and so on), from the parent pids in /proc/*/stat.
func Descendants(pid int) ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // it ended meanwhile
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		s := string(stat)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		children[pp] = append(children[pp], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out, nil
}

// TreeMem sums the memory of pid and all its descendants. Processes that
// end while it reads are skipped; PSS is -1 if any process's could not be
// read.
func TreeMem(pid int) (Mem, error) {
	total, err := MemOf(pid)
	if err != nil {
		return total, err
	}
	desc, err := Descendants(pid)
	if err != nil {
		return total, err
	}
	for _, p := range desc {
		m, err := MemOf(p)
		if err != nil {
			continue // it ended meanwhile
		}
		total.RSS += m.RSS
		total.Procs++
		if total.PSS >= 0 && m.PSS >= 0 {
			total.PSS += m.PSS
		} else {
			total.PSS = -1
		}
	}
	return total, nil
}
