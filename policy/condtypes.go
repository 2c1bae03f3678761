package policy

import (
	"fmt"
	"math/big"
	"net/netip"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	celtypes "github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	openfgav1 "github.com/openfga/api/proto/openfga/v1"
)

// paramType is the type of one condition parameter, as OpenFGA defines
// them: bool, string, int, uint, double, duration, timestamp, ipaddress,
// any, list<T> and map<T> (string keys).
type paramType struct {
	kind openfgav1.ConditionParamTypeRef_TypeName
	elem *paramType // list and map
	cel  *cel.Type
}

var paramTypeNames = map[openfgav1.ConditionParamTypeRef_TypeName]string{
	openfgav1.ConditionParamTypeRef_TYPE_NAME_ANY:       "any",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_BOOL:      "bool",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_STRING:    "string",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_INT:       "int",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_UINT:      "uint",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_DOUBLE:    "double",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_DURATION:  "duration",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_TIMESTAMP: "timestamp",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_IPADDRESS: "ipaddress",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_LIST:      "list",
	openfgav1.ConditionParamTypeRef_TYPE_NAME_MAP:       "map",
}

func (p *paramType) String() string {
	n := paramTypeNames[p.kind]
	if p.elem != nil {
		n += "<" + p.elem.String() + ">"
	}
	return n
}

// newParamType builds a parameter type from the model's proto form.
func newParamType(r *openfgav1.ConditionParamTypeRef) (*paramType, error) {
	k := r.GetTypeName()
	p := &paramType{kind: k}
	generic := k == openfgav1.ConditionParamTypeRef_TYPE_NAME_LIST || k == openfgav1.ConditionParamTypeRef_TYPE_NAME_MAP
	if _, ok := paramTypeNames[k]; !ok {
		return nil, fmt.Errorf("unknown parameter type %q", strings.ToLower(strings.TrimPrefix(k.String(), "TYPE_NAME_")))
	}
	switch {
	case generic && len(r.GetGenericTypes()) != 1:
		return nil, fmt.Errorf("%s needs one element type, as in %s<string>", paramTypeNames[k], paramTypeNames[k])
	case !generic && len(r.GetGenericTypes()) != 0:
		return nil, fmt.Errorf("%s takes no element type", paramTypeNames[k])
	}
	if generic {
		e, err := newParamType(r.GetGenericTypes()[0])
		if err != nil {
			return nil, err
		}
		p.elem = e
	}
	switch k {
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_ANY:
		p.cel = cel.AnyType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_BOOL:
		p.cel = cel.BoolType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_STRING:
		p.cel = cel.StringType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_INT:
		p.cel = cel.IntType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_UINT:
		p.cel = cel.UintType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_DOUBLE:
		p.cel = cel.DoubleType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_DURATION:
		p.cel = cel.DurationType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_TIMESTAMP:
		p.cel = cel.TimestampType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_IPADDRESS:
		p.cel = ipAddressParamType
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_LIST:
		p.cel = cel.ListType(p.elem.cel)
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_MAP:
		p.cel = cel.MapType(cel.StringType, p.elem.cel)
	}
	return p, nil
}

// convert turns a context value into the parameter's typed value. Values
// arrive as JSON decodes them (string, float64, bool, []any,
// map[string]any), and are read exactly as the OpenFGA server reads them:
// numbers may also be numeric strings, but an int must be integral;
// timestamps are RFC 3339 strings; durations are Go duration strings
// ("90m"); addresses are IP address strings. The bastion's own request
// context may also hand over the typed Go values (time.Time,
// time.Duration, netip.Addr, int64).
func (p *paramType) convert(v any) (any, error) {
	switch p.kind {
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_ANY:
		return v, nil
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_BOOL:
		if b, ok := v.(bool); ok {
			return b, nil
		}
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_STRING:
		if s, ok := v.(string); ok {
			return s, nil
		}
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_INT,
		openfgav1.ConditionParamTypeRef_TYPE_NAME_UINT,
		openfgav1.ConditionParamTypeRef_TYPE_NAME_DOUBLE:
		return p.number(v)
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_DURATION:
		switch d := v.(type) {
		case time.Duration:
			return d, nil
		case string:
			x, err := time.ParseDuration(d)
			if err != nil {
				return nil, fmt.Errorf("want a duration such as \"90m\", got %q", d)
			}
			return x, nil
		}
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_TIMESTAMP:
		switch t := v.(type) {
		case time.Time:
			return t, nil
		case string:
			x, err := time.Parse(time.RFC3339, t)
			if err != nil {
				return nil, fmt.Errorf("want an RFC 3339 timestamp such as \"2025-01-02T15:04:05Z\", got %q", t)
			}
			return x, nil
		}
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_IPADDRESS:
		switch a := v.(type) {
		case ipAddress:
			return a, nil
		case netip.Addr:
			return ipAddress{a.Unmap()}, nil
		case string:
			x, err := netip.ParseAddr(a)
			if err != nil {
				return nil, fmt.Errorf("want an IP address, got %q", a)
			}
			// An IPv4-mapped IPv6 address is its IPv4 address, so that
			// it matches IPv4 CIDRs (as in OpenFGA).
			return ipAddress{x.Unmap()}, nil
		}
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_LIST:
		l, ok := v.([]any)
		if !ok {
			break
		}
		out := make([]any, len(l))
		for i, x := range l {
			c, err := p.elem.convert(x)
			if err != nil {
				return nil, fmt.Errorf("item %d: %w", i, err)
			}
			out[i] = c
		}
		return out, nil
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_MAP:
		m, ok := v.(map[string]any)
		if !ok {
			break
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			c, err := p.elem.convert(x)
			if err != nil {
				return nil, fmt.Errorf("key %q: %w", k, err)
			}
			out[k] = c
		}
		return out, nil
	}
	return nil, fmt.Errorf("want %s, got %s", p, describeValue(v))
}

// number converts to int64, uint64 or float64 as OpenFGA does: the exact
// Go type, a float64 (JSON's only number) or a numeric string; an int or
// uint must be integral, a uint not negative.
func (p *paramType) number(v any) (any, error) {
	var f *big.Float
	switch x := v.(type) {
	case int64:
		if p.kind == openfgav1.ConditionParamTypeRef_TYPE_NAME_INT {
			return x, nil
		}
		f = new(big.Float).SetInt64(x)
	case int:
		f = new(big.Float).SetInt64(int64(x))
	case uint64:
		if p.kind == openfgav1.ConditionParamTypeRef_TYPE_NAME_UINT {
			return x, nil
		}
		f = new(big.Float).SetUint64(x)
	case float64:
		if p.kind == openfgav1.ConditionParamTypeRef_TYPE_NAME_DOUBLE {
			return x, nil
		}
		f = big.NewFloat(x)
	case string:
		var err error
		if f, _, err = big.ParseFloat(x, 10, 64, 0); err != nil {
			return nil, fmt.Errorf("want %s, got the string %q", p, x)
		}
	default:
		return nil, fmt.Errorf("want %s, got %s", p, describeValue(v))
	}
	switch p.kind {
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_INT:
		if !f.IsInt() {
			return nil, fmt.Errorf("want an int, got %s", f.String())
		}
		n, _ := f.Int64()
		return n, nil
	case openfgav1.ConditionParamTypeRef_TYPE_NAME_UINT:
		if !f.IsInt() {
			return nil, fmt.Errorf("want a uint, got %s", f.String())
		}
		n, _ := f.Int64()
		if n < 0 {
			return nil, fmt.Errorf("want a uint, got %s", f.String())
		}
		return uint64(n), nil
	}
	d, acc := f.Float64()
	if acc == big.Above || acc == big.Below {
		return nil, fmt.Errorf("%s cannot be a double", f.String())
	}
	return d, nil
}

func describeValue(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a bool"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// formatValue renders a typed value for explanations and messages.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case time.Duration:
		return x.String()
	case ipAddress:
		return x.addr.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = formatValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = strconv.Quote(k) + ": " + formatValue(x[k])
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// ipAddress is the CEL value of an ipaddress parameter: an address with
// the member function in_cidr("10.0.0.0/8").
type ipAddress struct{ addr netip.Addr }

var (
	// ipAddressType is the runtime type of ipAddress values.
	ipAddressType = cel.ObjectType("IPAddress", traits.ReceiverType)
	// ipAddressParamType declares parameters and functions of the type.
	ipAddressParamType = cel.ObjectType("IPAddress")
)

// ConvertToNative implements ref.Val.
func (ip ipAddress) ConvertToNative(t reflect.Type) (any, error) {
	switch {
	case reflect.TypeOf(ip).AssignableTo(t):
		return ip, nil
	case t == reflect.TypeOf(""):
		return ip.addr.String(), nil
	}
	return nil, fmt.Errorf("an IP address cannot become %s", t)
}

// ConvertToType implements ref.Val: string(ip) is its text form.
func (ip ipAddress) ConvertToType(t ref.Type) ref.Val {
	switch t {
	case celtypes.StringType:
		return celtypes.String(ip.addr.String())
	case celtypes.TypeType:
		return ipAddressType
	}
	return celtypes.NewErr("an IP address cannot become %s", t.TypeName())
}

// Equal implements ref.Val.
func (ip ipAddress) Equal(other ref.Val) ref.Val {
	o, ok := other.(ipAddress)
	if !ok {
		return celtypes.NoSuchOverloadErr()
	}
	return celtypes.Bool(ip.addr == o.addr)
}

// Type implements ref.Val.
func (ip ipAddress) Type() ref.Type { return ipAddressType }

// Value implements ref.Val.
func (ip ipAddress) Value() any { return ip }

// inCIDR is ip.in_cidr(cidr). A malformed CIDR is an evaluation error,
// which denies, never a silent false or true.
func inCIDR(lhs, rhs ref.Val) ref.Val {
	ip, ok := lhs.(ipAddress)
	if !ok {
		return celtypes.NewErr("in_cidr needs an IP address")
	}
	s, ok := rhs.Value().(string)
	if !ok {
		return celtypes.NewErr("in_cidr needs a CIDR string")
	}
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return celtypes.NewErr("%q is not a CIDR", s)
	}
	// An IPv4-mapped IPv6 prefix (::ffff:10.0.0.0/104) is the IPv4
	// prefix it maps, as the addresses themselves are unmapped.
	if a := pfx.Addr(); a.Is4In6() && pfx.Bits() >= 96 {
		pfx = netip.PrefixFrom(a.Unmap(), pfx.Bits()-96)
	}
	return celtypes.Bool(pfx.Contains(ip.addr))
}

// parseIPAddress is the CEL function ipaddress("10.1.2.3").
func parseIPAddress(v ref.Val) ref.Val {
	s, ok := v.Value().(string)
	if !ok {
		return celtypes.MaybeNoSuchOverloadErr(v)
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return celtypes.NewErr("%q is not an IP address", s)
	}
	return ipAddress{a.Unmap()}
}

// celEnvOptions are what every condition's environment has besides the
// standard library: the ipaddress type, its in_cidr method and the
// ipaddress() function, as in OpenFGA.
func celEnvOptions() []cel.EnvOption {
	return []cel.EnvOption{
		cel.Function("in_cidr", cel.MemberOverload("ipaddr_in_cidr",
			[]*cel.Type{ipAddressParamType, cel.StringType}, cel.BoolType, cel.BinaryBinding(inCIDR))),
		cel.Function("ipaddress", cel.Overload("string_to_ipaddress",
			[]*cel.Type{cel.StringType}, ipAddressType, cel.UnaryBinding(parseIPAddress))),
		cel.EagerlyValidateDeclarations(true),
	}
}
