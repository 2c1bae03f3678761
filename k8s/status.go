package k8s

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WriteStatus answers with a Kubernetes Status object, which kubectl
// decodes and prints: for 401 as "error: You must be logged in to the
// server (MESSAGE)", otherwise as "Error from server (REASON): MESSAGE".
// The message is what the user reads, so it says what went wrong and how
// to fix it. It is also sent as a Warning header, which kubectl prints on
// every path ("Warning: MESSAGE"): its discovery requests turn a 401 into
// a generic text and drop the body.
func WriteStatus(w http.ResponseWriter, code int, message string) {
	reason := metav1.StatusReasonUnknown
	switch code {
	case http.StatusUnauthorized:
		reason = metav1.StatusReasonUnauthorized
	case http.StatusForbidden:
		reason = metav1.StatusReasonForbidden
	case http.StatusBadGateway, http.StatusServiceUnavailable:
		reason = metav1.StatusReasonServiceUnavailable
	}
	s := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusFailure,
		Message: message, Reason: reason, Code: int32(code)}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Add("Warning", "299 - "+strconv.Quote(strings.ReplaceAll(message, "\n", " ")))
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(s)
}
