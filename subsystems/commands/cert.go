package commands

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	gossh "golang.org/x/crypto/ssh"

	"github.com/sshbastion/bastion/authn"
	"github.com/sshbastion/bastion/store"
)

// CertSigner signs user certificates with the bastion's user CA
// (hostshell.CA, which signs the onward certificates of host shells too).
type CertSigner interface {
	SignUserKey(key gossh.PublicKey, keyID string, serial uint64, principals []string, ttl time.Duration, perms gossh.Permissions) (*gossh.Certificate, error)
}

// CertIssuing is what `cert` hands out: certificates valid TTL unless
// --ttl asks otherwise, never more than MaxTTL (ssh_certificates).
type CertIssuing struct {
	Signer CertSigner
	TTL    time.Duration
	MaxTTL time.Duration
}

const (
	defaultCertTTL    = 10 * time.Minute
	defaultCertMaxTTL = time.Hour
)

// issuedCert is what `cert -o json` prints.
type issuedCert struct {
	Serial      uint64    `json:"serial"`
	KeyID       string    `json:"key_id"`
	Principals  []string  `json:"principals"`
	ValidBefore time.Time `json:"valid_before"`
	Certificate string    `json:"certificate"`
}

// newCert is `cert [RESOURCE]`: a short-lived certificate from the user CA
// for the key this connection logged in with, so that `ssh web-1` through
// ProxyJump works on targets that trust the CA rather than the user's key.
func newCert(e *env) *cobra.Command {
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "cert [RESOURCE]",
		Short: "Sign the key you logged in with: a short-lived certificate for the logins of your ssh Resources (or of RESOURCE)",
		Args:  cobra.MaximumNArgs(1),
		Example: fmt.Sprintf("  %s cert > ~/.ssh/id_ed25519-cert.pub\n  %s cert web-1 --ttl 5m > ~/.ssh/id_ed25519-cert.pub",
			e.deps.Host, e.deps.Host),
		RunE: func(c *cobra.Command, args []string) error {
			if e.deps.Certs.Signer == nil {
				return fmt.Errorf("this bastion issues no certificates")
			}
			// Checked first: a certificate signed and audited must not then
			// fail to print.
			if o := e.output; o != "table" && o != "" && o != "json" {
				return fmt.Errorf("unknown output format %q (use table or json)", o)
			}
			key, err := e.provenKey()
			if err != nil {
				return err
			}
			// A certificate that forces a command must not buy one that
			// does not: the bastion's certificate would log in to targets
			// without the restriction.
			if e.p.ForceCommand != "" {
				return e.deny("cert", "your certificate forces the command "+strconv.Quote(e.p.ForceCommand),
					"Log in with a key or certificate without force-command")
			}
			d, err := e.certTTL(ttl, c.Flags().Changed("ttl"))
			if err != nil {
				return err
			}
			resource := ""
			if len(args) == 1 {
				resource = args[0]
			}
			principals, withheld, err := e.certPrincipals(resource)
			if err != nil {
				return err
			}
			for _, w := range withheld {
				fmt.Fprintf(e.errOut, "bastion cert: %s\n", w)
			}
			serial, err := newSerial()
			if err != nil {
				return err
			}
			// The key id is what sshd logs for every login with the
			// certificate: it names the bastion, the user and the serial,
			// which the audit event below ties to everything else.
			keyID := fmt.Sprintf("bastion:%s:%d", e.p.User, serial)
			cert, err := e.deps.Certs.Signer.SignUserKey(key, keyID, serial, principals, d, certPermissions(e.p))
			if err != nil {
				return fmt.Errorf("cannot sign the certificate: %v", err)
			}
			validBefore := time.Unix(int64(cert.ValidBefore), 0).UTC()
			line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(cert))) + " " + keyID
			// No certificate leaves without its event: one the audit log
			// does not know of could log in to targets untraced.
			if err := e.record(store.Event{Action: "cert.issue", Target: certTarget(resource, serial), Details: map[string]string{
				"serial": strconv.FormatUint(serial, 10), "key_id": keyID, "principals": strings.Join(principals, ","),
				"valid_after":  time.Unix(int64(cert.ValidAfter), 0).UTC().Format(time.RFC3339),
				"valid_before": validBefore.Format(time.RFC3339), "ttl": d.String(),
				"fingerprint": gossh.FingerprintSHA256(key), "key_type": key.Type(), "resource": resource,
				"source": e.p.SourceAddr, "conn": e.p.SessionID,
			}}); err != nil {
				return fmt.Errorf("the audit log cannot record the certificate now, so none was issued; try again later (%v)", err)
			}
			if e.output != "table" && e.output != "" {
				return e.render(issuedCert{Serial: serial, KeyID: keyID, Principals: principals, ValidBefore: validBefore, Certificate: line}, nil, nil)
			}
			fmt.Fprintln(e.out, line)
			fmt.Fprintf(e.errOut, "bastion cert: serial %d for %s, valid until %s (%s)\n", serial,
				strings.Join(principals, ", "), validBefore.Format(time.RFC3339), d)
			return nil
		},
	}
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "validity (default ssh_certificates.ttl, 10m; at most ssh_certificates.max_ttl)")
	return cmd
}

func certTarget(resource string, serial uint64) string {
	if resource != "" {
		return resource
	}
	return "cert:" + strconv.FormatUint(serial, 10)
}

// provenKey is the key this connection authenticated with. Only that key
// is signed: its holder proved possession by signing this very login, so
// the certificate is useless to anyone without the private key. A key
// named as an argument, or merely offered, proves nothing.
func (e *env) provenKey() (gossh.PublicKey, error) {
	if e.p.PublicKey == "" {
		how := "without a key"
		if e.p.Method == authn.MethodOIDC {
			how = "through the device login (OIDC) without a key"
		}
		return nil, e.deny("cert", "it signs the key this connection logged in with, and you logged in "+how,
			fmt.Sprintf("A key login is needed: log in with your registered key (%s -i ~/.ssh/id_ed25519 cert) and run it again", e.deps.Host))
	}
	key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(e.p.PublicKey))
	if err != nil {
		return nil, fmt.Errorf("the key of this login cannot be read: %v", err)
	}
	// The key must be the one auth.success recorded for this login; a
	// mismatch means the identity was not built the way it must be.
	if gossh.FingerprintSHA256(key) != e.p.KeyFingerprint {
		return nil, errors.New("the key of this login does not match its recorded fingerprint; log in again")
	}
	return key, nil
}

// certTTL is the validity of the certificate: the configured default, or
// --ttl up to the cap, and never past the user's own login certificate.
func (e *env) certTTL(asked time.Duration, set bool) (time.Duration, error) {
	def, limit := e.deps.Certs.TTL, e.deps.Certs.MaxTTL
	if def <= 0 {
		def = defaultCertTTL
	}
	if limit <= 0 {
		limit = defaultCertMaxTTL
	}
	ttl := min(def, limit)
	if set {
		if asked <= 0 {
			return 0, fmt.Errorf("--ttl %s: give a positive duration, e.g. 5m", asked)
		}
		// The cap is the operator's: targets cannot ask the bastion about
		// revocations, so validity is all that limits a stolen copy.
		if asked > limit {
			return 0, &exitError{code: 1, msg: fmt.Sprintf("bastion cert: --ttl %s is above the cap of %s (ssh_certificates.max_ttl); ask for %s or less",
				asked, limit, limit)}
		}
		ttl = asked
	}
	// A certificate bought with a certificate ends with it: otherwise an
	// expiring credential could be renewed for ever.
	if vb := e.p.CertValidBefore; !vb.IsZero() {
		left := vb.Sub(e.deps.Clock()).Truncate(time.Second)
		if left <= 0 {
			return 0, fmt.Errorf("your login certificate has expired")
		}
		if ttl > left {
			fmt.Fprintf(e.errOut, "bastion cert: valid %s only, until your login certificate expires\n", left)
			ttl = left
		}
	}
	return ttl, nil
}

// certPrincipals are the logins the certificate carries: those of the
// ssh Resources the caller may act on (only RESOURCE's when given), minus
// the shared logins withheld by certLoginSafe; withheld says why each
// one left out was.
func (e *env) certPrincipals(resource string) (principals, withheld []string, err error) {
	granted, err := e.actableLogins()
	if err != nil {
		return nil, nil, err
	}
	var wanted []string
	if resource != "" {
		what := "cert " + resource
		// Viewing comes first, and fails as for a Resource that does not
		// exist: a name must not tell its existence to those who may not
		// see it.
		if err := e.requireRelation(what, "view", "resource:"+resource); err != nil {
			return nil, nil, err
		}
		r, err := e.deps.Resources.GetResource(e.ctx, resource)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("no resource %q (see `resources list`)", resource)
		} else if err != nil {
			return nil, nil, err
		}
		if r.Kind != "ssh" {
			return nil, nil, fmt.Errorf("%s is a %s Resource; certificates are for ssh Resources", resource, r.Kind)
		}
		// act is what a session needs: a certificate must not carry a
		// login on a Resource its holder could not open a shell on.
		login, ok := granted[resource]
		if !ok {
			return nil, nil, e.deny(what, fmt.Sprintf("%s lacks act on resource:%s", e.p.Subject(), resource),
				fmt.Sprintf("Ask for access with: %s request create %s --reason \"...\"", e.deps.Host, resource))
		}
		wanted = []string{login}
	} else {
		// The Resources `config` lists: those the caller may view and act on.
		vis, err := e.visibleResources()
		if err != nil {
			return nil, nil, err
		}
		for _, r := range vis {
			if login, ok := granted[r.Name]; ok && !slices.Contains(wanted, login) {
				wanted = append(wanted, login)
			}
		}
	}
	sort.Strings(wanted)
	for _, l := range wanted {
		if why := e.certLoginSafe(l, granted); why != "" {
			withheld = append(withheld, why)
			continue
		}
		principals = append(principals, l)
	}
	if len(principals) == 0 {
		what := strings.TrimSpace("cert " + resource)
		if len(withheld) > 0 {
			return nil, nil, e.deny(what, strings.Join(withheld, "; "),
				fmt.Sprintf("Let the bastion log in for you instead (%s RESOURCE -- COMMAND, or pick it in the TUI), or ask an admin to give those Resources one login", e.deps.Host))
		}
		return nil, nil, e.deny(what, fmt.Sprintf("%s may act on no ssh Resource", e.p.Subject()),
			fmt.Sprintf("Ask for access with: %s request create RESOURCE --reason \"...\"", e.deps.Host))
	}
	return principals, withheld, nil
}

// certLoginSafe returns why login may not go in the certificate, or "".
// An OpenSSH certificate is not bound to a host: each principal logs in
// as that account on every target trusting the CA. Through the bastion,
// the caller reaches every ssh Resource they may act on, so a shared
// login (root, deploy) must be the one each of them grants, or it would
// open, say, root on a Resource where they are only themselves. Their own
// name is theirs everywhere (it is the login of Resources naming none).
func (e *env) certLoginSafe(login string, granted map[string]string) string {
	if login == e.p.User {
		return ""
	}
	names := make([]string, 0, len(granted))
	for n := range granted {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if granted[n] != login {
			return fmt.Sprintf("login %s withheld: the certificate would also log you in as %s on %s, which you may use only as %s",
				login, login, n, granted[n])
		}
	}
	return ""
}

// actableLogins maps every ssh Resource the caller may act on (viewable
// or not: -W needs only act) to the login the bastion uses there. It
// fails closed: a policy error fails the command, never widens it.
func (e *env) actableLogins() (map[string]string, error) {
	all, err := e.deps.Resources.ListResources(e.ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, r := range all {
		if r.Kind != "ssh" {
			continue
		}
		ok, err := e.deps.Policy.Check(e.ctx, e.p.Subject(), "act", "resource:"+r.Name)
		if err != nil {
			return nil, fmt.Errorf("cannot evaluate act on resource:%s: %v", r.Name, err)
		}
		if ok {
			out[r.Name] = r.LoginFor(e.p.User)
		}
	}
	return out, nil
}

// certPermissions are the extensions of a `cert` certificate: what an
// interactive login needs (permit-pty, permit-user-rc) unless the user's
// own certificate withholds it, so that hopping through the bastion never
// lifts a restriction; and never agent, X11 or port forwarding, which the
// bastion does not grant for itself either. No critical option: logins
// forced to a command are refused before this.
func certPermissions(p authn.Principal) gossh.Permissions {
	perms := gossh.Permissions{CriticalOptions: map[string]string{}, Extensions: map[string]string{}}
	if !p.NoPTY {
		perms.Extensions[authn.ExtPTY] = ""
	}
	if !p.NoUserRC {
		perms.Extensions[authn.ExtUserRC] = ""
	}
	return perms
}

// newSerial is a random serial, non-zero (0 is every unnumbered
// certificate's) and below 2^53, so that it survives JSON tools that read
// numbers as doubles.
func newSerial() (uint64, error) {
	var b [8]byte
	for {
		if _, err := rand.Read(b[:]); err != nil {
			return 0, err
		}
		if s := binary.BigEndian.Uint64(b[:]) >> 11; s != 0 {
			return s, nil
		}
	}
}
