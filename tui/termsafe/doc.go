// Package termsafe makes text that others wrote safe to print on a
// terminal. It is the one sanitiser of the bastion: table cells, command
// messages, stderr notes and every TUI field go through it.
//
// Anyone may put text into the bastion that an admin later reads: an
// unauthenticated client chooses its login name (shown in `audit`), a
// requester writes the reason of an access request, a project admin the
// labels of a Resource. Printed raw, an ESC sequence in such a string can
// retitle or clear the reader's terminal, move the cursor to forge a row,
// and a bidi override can make a row read differently from what it says.
// So the sanitiser escapes, visibly and reversibly enough for a human:
//
//   - C0 controls (U+0000–U+001F) as \n, \r, \t or \xHH (ESC is \x1b),
//   - DEL as \x7f,
//   - C1 controls (U+0080–U+009F; U+009B is a one-byte CSI) as \u009b,
//   - bidi controls (U+061C, U+200E, U+200F, U+202A–U+202E,
//     U+2066–U+2069) and the line and paragraph separators U+2028 and
//     U+2029 as \u202e and so on,
//   - every byte that is not part of valid UTF-8 as \xHH.
//
// Printable ASCII, the backslash included, passes unchanged, as does all
// other valid UTF-8: names in any script still read as they were written.
//
// [String] is for one line (a table cell, a name in a message): line
// breaks and tabs are escaped too. [Lines] keeps line feeds and tabs, for
// multi-line text whose line structure is ours (an error that lists
// several problems, the model source). [JSON] escapes in encoded JSON what
// encoding/json leaves raw (DEL, C1, bidi controls) using \u escapes,
// which decode to the very same string, so `-o json` stays exact.
// [NewWriter] applies a mode to everything written through it.
//
// The package imports nothing of the bastion's, so that both the TUI and
// the server's commands can use it.
package termsafe
