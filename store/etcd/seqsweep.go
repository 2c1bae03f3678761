package etcd

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/sshbastion/bastion/store"
)

// One sweep of the audit sequencer (sequencer.go): batches chained after
// the head and committed in one transaction, as blocks.

// sweepOutcome is what commitSweep did: ok, the events as chained per
// entry; else which entries are gone from the inbox. head and headRev are
// the chain head after it either way.
type sweepOutcome struct {
	ok      bool
	chained [][]store.Event
	gone    []bool
	head    head
	headRev int64
}

// prepared is a sweep ready to commit: its operations, and what it
// chained.
type prepared struct {
	ops, els []clientv3.Op
	chained  [][]store.Event // per entry
	after    head
	keyCmps  []clientv3.Cmp
}

// prepareSweep chains entries after h and builds the transaction that
// stores them as blocks with the new head, and replaces each inbox entry
// with its receipt, if every inbox key's mod revision is still its
// entry's.
func prepareSweep(s *Store, chain Chain, h head, entries []*entry) (prepared, error) {
	var all []store.Event
	for _, e := range entries {
		all = append(all, e.events...)
	}
	chained := chain(h.Seq, h.Hash, all)
	if len(chained) != len(all) || len(all) == 0 || chained[0].Seq != h.Seq+1 {
		return prepared{}, fmt.Errorf("etcd: audit chain returned %d events for %d after seq %d", len(chained), len(all), h.Seq)
	}
	blocks, err := encodeBlocks(chained)
	if err != nil {
		return prepared{}, err
	}
	last := chained[len(chained)-1]
	p := prepared{after: head{Seq: last.Seq, Hash: last.Hash}, chained: make([][]store.Event, len(entries))}
	for _, b := range blocks {
		p.ops = append(p.ops, clientv3.OpPut(s.k(eventKey(b.first)), b.val))
	}
	p.ops = append(p.ops, clientv3.OpPut(s.k(keyHead), headValue(last.Seq, last.Hash)))
	p.els = []clientv3.Op{clientv3.OpGet(s.k(keyHead))}
	prevSeq, prevHash, i := h.Seq, h.Hash, 0
	for n, e := range entries {
		p.chained[n] = chained[i : i+len(e.events)]
		i += len(e.events)
		if e.key != "" {
			r, _ := json.Marshal(inboxValue{Chained: true, Seq: prevSeq, Prev: prevHash, Last: chained[i-1].Hash})
			p.keyCmps = append(p.keyCmps, clientv3.Compare(clientv3.ModRevision(e.key), "=", e.rev))
			p.ops = append(p.ops, clientv3.OpDelete(e.key), clientv3.OpPut(receiptKey(s, e.key), string(r)))
			p.els = append(p.els, clientv3.OpGet(e.key))
		}
		prevSeq, prevHash = chained[i-1].Seq, chained[i-1].Hash
	}
	return p, nil
}

// commitSweep commits p if headCmp holds (the head is the one p chains
// onto). An error means the outcome is unknown.
func (s *Store) commitSweep(ctx context.Context, p prepared, headCmp clientv3.Cmp, entries []*entry) (sweepOutcome, error) {
	tr, err := s.cli.Txn(ctx).If(append([]clientv3.Cmp{headCmp}, p.keyCmps...)...).Then(p.ops...).Else(p.els...).Commit()
	if err != nil {
		return sweepOutcome{}, fmt.Errorf("etcd: chain audit events to seq %d: %w", p.after.Seq, err)
	}
	out := sweepOutcome{chained: p.chained, gone: make([]bool, len(entries))}
	if tr.Succeeded {
		out.ok, out.head, out.headRev = true, p.after, tr.Header.Revision
		return out, nil
	}
	if kvs := tr.Responses[0].GetResponseRange().Kvs; len(kvs) == 1 {
		var nh head
		if json.Unmarshal(kvs[0].Value, &nh) == nil {
			out.head, out.headRev = nh, kvs[0].ModRevision
		}
	}
	r := 1
	for n, e := range entries {
		if e.key == "" {
			continue
		}
		kvs := tr.Responses[r].GetResponseRange().Kvs
		r++
		out.gone[n] = len(kvs) == 0 || kvs[0].ModRevision != e.rev
	}
	return out, nil
}

// sweepAlone chains one writer's own inbox batch when no sequencer did:
// it returns the batch's receipt if it has one or gets one now.
func (s *Store) sweepAlone(ctx context.Context, chain Chain, e entry) (inboxValue, bool, error) {
	resp, err := s.cli.Get(ctx, receiptKey(s, e.key))
	if err != nil {
		return inboxValue{}, false, err
	}
	if len(resp.Kvs) == 1 {
		var r inboxValue
		if json.Unmarshal(resp.Kvs[0].Value, &r) == nil && r.Chained {
			return r, true, nil
		}
	}
	h, rev, err := s.chainHead(ctx)
	if err != nil {
		return inboxValue{}, false, err
	}
	p, err := prepareSweep(s, chain, h, []*entry{&e})
	if err != nil {
		return inboxValue{}, false, err
	}
	out, err := s.commitSweep(ctx, p, clientv3.Compare(clientv3.ModRevision(s.k(keyHead)), "=", rev), []*entry{&e})
	if err != nil || !out.ok {
		return inboxValue{}, false, err
	}
	return inboxValue{Chained: true, Seq: h.Seq, Prev: h.Hash, Last: out.chained[0][len(e.events)-1].Hash}, true, nil
}

// chainHead reads the chain head and the hash it ends on.
func (s *Store) chainHead(ctx context.Context) (head, int64, error) {
	h, rev, err := s.readHeadFull(ctx)
	if err != nil {
		return head{}, 0, err
	}
	if h.Seq > 0 && h.Hash == "" {
		if h.Hash, err = s.tailHash(ctx, h.Seq); err != nil {
			return head{}, 0, err
		}
	}
	return h, rev, nil
}

// encodedBlock is one block to put: its first seq and its value.
type encodedBlock struct {
	first uint64
	val   string
}

// encodeBlocks packs chained events into blocks of at most blockBytes.
func encodeBlocks(evs []store.Event) ([]encodedBlock, error) {
	var out []encodedBlock
	var cur []string
	var first uint64
	size := 0
	flush := func() {
		if len(cur) == 1 {
			out = append(out, encodedBlock{first, cur[0]})
		} else if len(cur) > 1 {
			out = append(out, encodedBlock{first, packBlock([]byte("[" + strings.Join(cur, ",") + "]"))})
		}
		cur, size = nil, 0
	}
	for _, e := range evs {
		b, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("etcd: encode event %d: %w", e.Seq, err)
		}
		if len(cur) > 0 && size+len(b)+1 > blockBytes {
			flush()
		}
		if len(cur) == 0 {
			first = e.Seq
		}
		cur, size = append(cur, string(b)), size+len(b)+1
	}
	flush()
	return out, nil
}

// eventsSize estimates the encoded size of evs, for the sweep's limits.
func eventsSize(evs []store.Event) int {
	n := 0
	for _, e := range evs {
		n += 400 + len(e.Actor) + len(e.Action) + len(e.Target) + len(e.Decision) + len(e.Reason)
		for k, v := range e.Details {
			n += 8 + len(k) + len(v)
		}
	}
	return n
}
