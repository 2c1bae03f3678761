// Package netguard decides which network addresses a Resource made over
// ssh may reach. A project admin who may define a Resource must not be
// able to turn the bastion into a door to places behind it that nobody
// granted: the bastion's own listeners (metrics, pprof, its ssh port),
// the bastion host's loopback services, link-local neighbours, and the
// cloud metadata service that hands out the host's credentials.
//
// The Guard checks twice. At `resources add` it resolves the name and
// checks every address it resolves to (CheckAddress), so that a mistake
// is named at once. At every dial it checks the address actually being
// connected to, after resolution, from a net.Dialer Control function
// (DialResource), so that a name that later resolves elsewhere (DNS
// rebinding, an edited hosts file) is refused too. Resources from the
// operator's config file are trusted as written and dialled unchecked.
//
// The operator may re-open refused ranges with allow CIDRs (for example
// 127.0.0.0/8 when targets run on the bastion host), never the bastion's
// own listeners; a metadata address is re-opened only by a prefix that
// names exactly that address.
package netguard
