// Package storetest is the behaviour suite every store backend must pass.
// A backend's test calls Run with a function that opens a fresh, empty
// store driven by the given clock:
//
//	func TestSuite(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, clock store.Clock) store.Store {
//			s, err := mybackend.Open(..., clock)
//			if err != nil {
//				t.Fatal(err)
//			}
//			return s
//		})
//	}
//
// Run closes every store it opens when the subtest ends (Close may also be
// called by the backend's own cleanup, so it must tolerate a second call).
//
// Besides what the store interfaces' comments say, the suite pins down
// these semantics, which every backend shares:
//   - Get-style calls and deletes of a missing record (DeleteUser,
//     DeleteKey, DeleteResource) return an error matching store.ErrNotFound;
//     deleting a missing tuple does not.
//   - Put-style calls replace; a key re-put under another user moves.
//   - Empty names are rejected. A tuple needs a non-empty relation and
//     subject and an object of the form "type:id"; a WriteTuples call with
//     an invalid tuple fails as a whole and applies nothing.
//   - A tuple is hidden from the instant Clock() reaches its Expires.
//   - QueryEvents: Since is inclusive, Until exclusive; Actor is exact;
//     Action is exact or, ending in "." or "*", a prefix; Limit keeps the
//     newest matches; results are in seq order.
//   - AppendEvents rejects a batch that does not continue the stored seqs
//     without gaps, and then stores none of it.
//
// Reopening a store (LastEvent after restart, durability) depends on how a
// backend is opened, so each backend tests it itself.
package storetest
